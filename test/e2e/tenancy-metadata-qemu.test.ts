// The owner element on real libvirtd + QEMU: declared in the domain XML a provisioner defines, or
// set afterwards with `virsh metadata`, and read back by the agent's addon call — the live
// definition of a running domain and the persistent one apart, as the agent's check sees them.
// The domain needs no guest: QEMU sitting in its firmware is a running domain to libvirt.
import { expect } from "chai";

import { Hypervisor } from "../../src/hypervisor/connection.ts";
import { ModificationImpact } from "../../src/hypervisor/flags.ts";
import { decideOwnership } from "../../src/tenancy/decide.ts";
import { OWNER_NAMESPACE_URI, parseOwnerElement } from "../../src/tenancy/owner-element.ts";
import { readOwnership } from "../../src/tenancy/read-ownership.ts";
import { DENY_UNOWNED } from "../../src/tenancy/unowned-policy.ts";
import { ownerMetadataXml } from "../support/guest/domain-xml.ts";
import {
  defineDomain,
  destroyDomain,
  removeDomain,
  startDomain,
  SYSTEM_URI,
  uniqueDomainName,
  useLibvirtd,
  virsh,
} from "../support/libvirt/libvirtd.ts";

function firmwareOnlyDomain(name: string, owners?: readonly string[]): string {
  return [
    `<domain type='qemu'>`,
    `<name>${name}</name>`,
    ownerMetadataXml(owners),
    `<memory unit='MiB'>32</memory><vcpu>1</vcpu>`,
    `<os><type arch='x86_64' machine='pc'>hvm</type></os>`,
    `<devices><controller type='usb' model='none'/><memballoon model='none'/></devices>`,
    `</domain>`,
  ].join("\n");
}

const namespacesIn = (xml: string | undefined) => {
  const owner = xml === undefined ? undefined : parseOwnerElement(xml);
  return owner?.kind === "owner" ? owner.namespaces : owner;
};

describe("the owner element on real QEMU", function () {
  this.timeout(120_000);
  let hv: Hypervisor;
  const names: string[] = [];

  before(async () => {
    await useLibvirtd();
    hv = await Hypervisor.open(SYSTEM_URI, { callTimeoutMs: 15_000 });
  });
  after(async () => {
    for (const name of names) await removeDomain(name);
    await hv?.close();
  });

  it("reads the element a provisioner wrote into the domain XML, running or not", async () => {
    const name = uniqueDomainName("owner-xml");
    names.push(name);
    await defineDomain(firmwareOnlyDomain(name, ["team-a", "team-a-ci"]));
    expect(namespacesIn(await hv.domainMetadata(name, OWNER_NAMESPACE_URI))).to.deep.equal([
      "team-a",
      "team-a-ci",
    ]);
    await startDomain(name);
    const finding = await readOwnership(hv, { name });
    const decision = decideOwnership(
      { namespace: "team-a", domain: name, node: "n" },
      finding,
      DENY_UNOWNED,
    );
    expect(decision).to.include({ allowed: true, basis: "owner-element" });
    expect(decision.allowed && decision.uuid).to.equal((await hv.domainInfo(name)).uuid);
  });

  it("sees `virsh metadata --set` on a running domain: --live in the live definition only", async () => {
    const name = uniqueDomainName("owner-virsh");
    names.push(name);
    await defineDomain(firmwareOnlyDomain(name));
    await startDomain(name);
    expect(await hv.domainMetadata(name, OWNER_NAMESPACE_URI)).to.equal(undefined);

    // The provisioner's command, as docs/security.md gives it (live only here, to tell them apart).
    const set = (flag: string, ns: string) =>
      virsh([
        "metadata",
        name,
        "--uri",
        OWNER_NAMESPACE_URI,
        "--key",
        "vmsnap",
        flag,
        "--set",
        `<owner><namespace>${ns}</namespace></owner>`,
      ]);
    await set("--live", "team-b");
    expect(namespacesIn(await hv.domainMetadata(name, OWNER_NAMESPACE_URI))).to.deep.equal([
      "team-b",
    ]);
    expect(
      await hv.domainMetadata(name, OWNER_NAMESPACE_URI, { flags: ModificationImpact.Config }),
    ).to.equal(undefined);

    await set("--config", "team-c");
    expect(
      namespacesIn(
        await hv.domainMetadata(name, OWNER_NAMESPACE_URI, { flags: ModificationImpact.Live }),
      ),
    ).to.deep.equal(["team-b"]);
    expect(
      namespacesIn(
        await hv.domainMetadata(name, OWNER_NAMESPACE_URI, { flags: ModificationImpact.Config }),
      ),
    ).to.deep.equal(["team-c"]);

    // Shut off, the current definition is the persistent one: the live-only owner is gone.
    await destroyDomain(name);
    expect(namespacesIn(await hv.domainMetadata(name, OWNER_NAMESPACE_URI))).to.deep.equal([
      "team-c",
    ]);

    // libvirt stores it under the --key prefix in the domain XML.
    const xml = await virsh(["dumpxml", name, "--inactive"]);
    expect(xml).to.match(
      /<vmsnap:owner xmlns:vmsnap="https:\/\/vmsnap\.io\/xmlns\/owner\/v1">\s*<vmsnap:namespace>team-c<\/vmsnap:namespace>/,
    );
  });
});
