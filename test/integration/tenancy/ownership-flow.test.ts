// Tenancy end to end on real parts — kube-apiserver, Ceph, the controller process, libvirt's test
// driver in a daemon — with the deployed default (domains without an owner element are denied):
// namespace A's snapshot of B's domain fails Forbidden with nothing done to the guest or its
// storage; B's succeeds; an unowned domain is denied; a memory snapshot the memory folder cannot
// hold fails InsufficientSpace before any freeze; and deleting a refused snapshot does not thaw
// or resume a guest its owner froze or paused.
import { expect } from "chai";
import { readdirSync } from "node:fs";

import type { VMSnapshot } from "../../../src/api/types.ts";
import { groupNameForDomainUUID } from "../../../src/storage/rbd/names.ts";
import { ownerMetadataXml } from "../../support/guest/domain-xml.ts";
import { testDomainXml, uniqueTestDomainName } from "../../support/libvirt/test-driver-host.ts";
import { waitFor } from "../../support/processes.ts";
import { startScenario, type Scenario } from "../../support/controller/snapshot-scenario.ts";

describe("tenancy on real parts: who may snapshot which domain", function () {
  this.timeout(180_000);
  let s: Scenario;
  let a: string;
  let b: string;

  before(async () => {
    // Every namespace (not only the scenario's), deny unowned domains, and a reserve no disk has.
    s = await startScenario({
      namespace: undefined,
      unownedDomains: "",
      extraArgs: ["--memory-reserve=1000Ti"],
    });
    a = await s.cp.newNamespace("team-a");
    b = await s.cp.newNamespace("team-b");
  });
  after(async () => {
    await s?.stop();
  });

  /** A running domain with two RBD disks and a guest agent, owned by `owners` (none: no element). */
  async function domain(
    label: string,
    owners?: string[],
  ): Promise<{ name: string; images: string[] }> {
    const name = uniqueTestDomainName(label);
    const images = [`${name}-d0`, `${name}-d1`];
    for (const image of images) {
      const r = await s.ceph.rbd(["create", "--size", "4", `${s.ceph.pool}/${image}`]);
      expect(r.code, r.stderr).to.equal(0);
    }
    const xml = testDomainXml({
      name,
      rbdDisks: images.map((i) => `${s.ceph.pool}/${i}`),
      guestAgent: true,
    }).replace("</name>", `</name>\n  ${ownerMetadataXml(owners)}`);
    await s.host.defineRunningDomain(name, xml);
    return { name, images };
  }

  async function snapshot(
    namespace: string,
    name: string,
    domainName: string,
    extra: Record<string, unknown> = {},
  ): Promise<void> {
    const r = await s.cp.kubectl(
      ["create", "-f", "-"],
      JSON.stringify({
        apiVersion: "vmsnap.io/v1alpha1",
        kind: "VMSnapshot",
        metadata: { name, namespace },
        spec: { source: { domain: domainName, node: s.nodeName }, ...extra },
      }),
    );
    expect(r.code, r.stderr).to.equal(0);
  }

  async function final(namespace: string, name: string): Promise<VMSnapshot> {
    let last: VMSnapshot | undefined;
    await waitFor(
      `${namespace}/${name} final`,
      async () => {
        const r = await s.cp.kubectl(["get", "vmsnapshot", name, "-n", namespace, "-o", "json"]);
        last = JSON.parse(r.stdout) as VMSnapshot;
        return last.status?.phase === "Succeeded" || last.status?.phase === "Failed";
      },
      60_000,
      200,
    );
    return last!;
  }

  /** Nothing of this domain touched: running, thawed, no libvirt snapshot, no RBD group or snapshot, no memory file. */
  async function untouched(d: { name: string; images: string[] }): Promise<void> {
    expect(await s.host.domainState(d.name)).to.equal("running");
    expect(await s.host.isFrozen(d.name), "never left frozen").to.equal(false);
    expect(await s.host.hypervisor().listSnapshots(d.name)).to.deep.equal([]);
    const groups = await s.ceph.rbd(["group", "ls", s.ceph.pool, "--format", "json"]);
    const { uuid } = await s.host.hypervisor().domainInfo(d.name);
    expect(JSON.parse(groups.stdout || "[]") as string[]).to.not.include(
      groupNameForDomainUUID(uuid),
    );
    for (const image of d.images) expect(await s.imageSnapshots(image), image).to.deep.equal([]);
    expect(readdirSync(s.controller.memoryDir)).to.deep.equal([]);
  }

  it("fails A's snapshot of B's domain Forbidden before anything touches it; B's own succeeds", async () => {
    const dom = await domain("of-b", [b]);
    await snapshot(a, "steal", dom.name);
    const refused = await final(a, "steal");
    expect(refused.status?.error?.reason).to.equal("Forbidden");
    expect(refused.status?.error?.message).to.equal(
      `namespace ${a} may not snapshot domain "${dom.name}" on node ${s.nodeName}: no such domain is ` +
        "declared as owned by this namespace (the host's administrator declares owners in the domain's libvirt metadata)",
    );
    expect(refused.status?.frozenAt).to.equal(undefined);
    expect(refused.status?.freezeDeadline).to.equal(undefined);
    await untouched(dom);
    // The operator's log says why; the tenant's status did not.
    expect(s.controller.log()).to.include(`is owned by ${b}`);

    await snapshot(b, "mine", dom.name);
    const taken = await final(b, "mine");
    expect(taken.status?.phase, JSON.stringify(taken.status?.error)).to.equal("Succeeded");
    expect(await s.groupSnapshots(dom.name)).to.deep.equal([`vmsnap-${taken.metadata.uid}`]);
  });

  it("answers a domain that does not exist with the very same reason and message", async () => {
    const dom = await domain("of-b-2", [b]);
    await snapshot(a, "exists", dom.name);
    await snapshot(a, "missing", "no-such-domain-here");
    const [exists, missing] = [await final(a, "exists"), await final(a, "missing")];
    expect(missing.status?.error?.reason).to.equal("Forbidden");
    expect(missing.status?.error?.message?.replace("no-such-domain-here", "X")).to.equal(
      exists.status?.error?.message?.replace(dom.name, "X"),
    );
  });

  it("denies a domain without an owner element by default", async () => {
    const dom = await domain("unowned");
    await snapshot(a, "unowned", dom.name);
    expect((await final(a, "unowned")).status?.error?.reason).to.equal("Forbidden");
    await untouched(dom);
  });

  it("refuses a memory snapshot the memory folder cannot hold, InsufficientSpace, before any freeze", async () => {
    const dom = await domain("ram", [b]);
    await snapshot(b, "ram", dom.name, { memory: true });
    const refused = await final(b, "ram");
    expect(refused.status?.error?.reason).to.equal("InsufficientSpace");
    expect(refused.status?.error?.message).to.match(
      /^not enough room for the memory image: .* has .* free, the guest's RAM needs 128 MiB \+ 1000 TiB reserve$/,
    );
    await untouched(dom);
  });

  describe("deleting a snapshot of someone else's domain leaves the owner's frozen, paused guest so", () => {
    async function held(label: string) {
      const dom = await domain(label, [b]);
      const hv = s.host.hypervisor();
      await hv.fsFreeze(dom.name);
      await hv.suspend(dom.name);
      return {
        dom,
        /** Asserts the guest is still paused and frozen, then gives it back. */
        async stillHeld() {
          try {
            expect(await s.host.domainState(dom.name), "still paused").to.equal("paused");
            await hv.resume(dom.name);
            expect(await s.host.isFrozen(dom.name), "still frozen").to.equal(true);
          } finally {
            await hv.resume(dom.name).catch(() => undefined);
            await hv.fsThaw(dom.name).catch(() => undefined);
          }
        },
      };
    }

    it("after it failed Forbidden", async () => {
      const { dom, stillHeld } = await held("held");
      await snapshot(a, "meddle", dom.name);
      expect((await final(a, "meddle")).status?.error?.reason).to.equal("Forbidden");
      const deleted = await s.cp.kubectl([
        "delete",
        "vmsnapshot",
        "meddle",
        "-n",
        a,
        "--timeout=60s",
      ]);
      expect(deleted.code, deleted.stderr).to.equal(0);
      await stillHeld();
    });

    it("deleted before the agent first looked at it, the finalizer set by the tenant", async () => {
      const { dom, stillHeld } = await held("held-early");
      // The agent is away: the deletion is the first thing it will see of this snapshot.
      await s.controller.stop();
      try {
        const r = await s.cp.kubectl(
          ["create", "-f", "-"],
          JSON.stringify({
            apiVersion: "vmsnap.io/v1alpha1",
            kind: "VMSnapshot",
            metadata: { name: "early", namespace: a, finalizers: ["vmsnap.io/artefacts"] },
            spec: { source: { domain: dom.name, node: s.nodeName } },
          }),
        );
        expect(r.code, r.stderr).to.equal(0);
        const deleted = await s.cp.kubectl([
          "delete",
          "vmsnapshot",
          "early",
          "-n",
          a,
          "--wait=false",
        ]);
        expect(deleted.code, deleted.stderr).to.equal(0);
      } finally {
        await s.startController();
      }
      await waitFor(
        "the agent released the finalizer",
        async () => (await s.cp.kubectl(["get", "vmsnapshot", "early", "-n", a])).code !== 0,
        60_000,
        200,
      );
      await stillHeld();
    });
  });
});
