// A new domain for a restore, through the real addon and libvirt's test driver: the snapshot's
// domain XML rewritten by restoreDomainXml (new name, UUID, disks) is accepted by libvirt's own
// parser, defined beside the source, started, stopped and undefined — the source untouched.
import { expect } from "chai";
import { randomUUID } from "node:crypto";

import type { Hypervisor } from "../../../src/hypervisor/connection.ts";
import { parseDisks } from "../../../src/hypervisor/disk-inventory.ts";
import { HypervisorError } from "../../../src/hypervisor/errors.ts";
import { DomainXmlFlags } from "../../../src/hypervisor/flags.ts";
import { restoreDomainXml } from "../../../src/hypervisor/restore-xml.ts";
import { openTestHost, RUNNING } from "./test-host.ts";

describe("restore to a new domain on the libvirt test driver", function () {
  let hv: Hypervisor;

  beforeEach(async () => {
    hv = await openTestHost({ callTimeoutMs: 5000 });
  });
  afterEach(async () => {
    await hv.close();
  });

  it("defines the rewritten XML as a second domain with its own UUID and disks; the source keeps running", async () => {
    const source = await hv.domainInfo(RUNNING);
    const live = await hv.domainXml(RUNNING);
    const uuid = randomUUID();
    const xml = restoreDomainXml(live, {
      disks: [
        { target: "vda", source: { kind: "rbd", pool: "vms", image: "copy-root" } },
        { target: "vdb", source: { kind: "file", path: "/var/lib/vms/copy-data.qcow2" } },
      ],
      identity: { name: "vmsnap-copy", uuid },
    });
    expect(await hv.defineXml(xml)).to.equal("vmsnap-copy");
    const copy = await hv.domainInfo("vmsnap-copy");
    expect(copy).to.deep.include({ uuid, state: "shutoff", persistent: true });
    const disks = parseDisks(await hv.domainXml("vmsnap-copy", { flags: DomainXmlFlags.Inactive }));
    expect(
      disks.map((d) =>
        d.plan.backend === "rbd"
          ? d.plan.rbd.image
          : d.plan.backend === "libvirt-file"
            ? d.plan.file.path
            : "",
      ),
    ).to.deep.equal(["copy-root", "/var/lib/vms/copy-data.qcow2"]);

    await hv.start("vmsnap-copy");
    expect((await hv.domainInfo("vmsnap-copy")).state).to.equal("running");
    await hv.destroy("vmsnap-copy");
    await hv.undefine("vmsnap-copy");
    const gone = await hv.domainInfo("vmsnap-copy").catch((e: unknown) => e);
    expect((gone as HypervisorError).reason).to.equal("DomainNotFound");
    expect(await hv.domainInfo(RUNNING)).to.deep.include({ uuid: source.uuid, state: "running" });
  });

  // Both clashes are code 9 (OPERATION_FAILED), told apart only by text: a restore checks the
  // name is free (DomainNotFound) before it defines anything, and always picks a fresh UUID.
  it("refuses a new domain that reuses the source's UUID, or its name, with code 9", async () => {
    const live = await hv.domainXml(RUNNING);
    const source = await hv.domainInfo(RUNNING);
    for (const identity of [
      { name: "vmsnap-clash", uuid: source.uuid },
      { name: RUNNING, uuid: randomUUID() },
    ]) {
      const err = await hv
        .defineXml(restoreDomainXml(live, { disks: [], identity }))
        .catch((e: unknown) => e);
      expect(err).to.be.instanceOf(HypervisorError);
      expect((err as HypervisorError).code, String(err)).to.equal(9);
    }
    expect(await hv.domainInfo(RUNNING)).to.deep.include({ uuid: source.uuid, state: "running" });
  });
});
