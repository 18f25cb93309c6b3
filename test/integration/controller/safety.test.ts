// The safety promise where nobody looked (issue 12), on real parts: kube-apiserver + etcd, a
// real Ceph cluster and the libvirt test driver hosted by a daemon, so a freeze made by someone
// else is visible to the controller exactly as an administrator's `virsh domfsfreeze` would be.
import { expect } from "chai";
import type { VMSnapshot } from "../../../src/api/types.ts";
import { startScenario, type Scenario } from "../../support/controller/snapshot-scenario.ts";

describe("safety: vmsnap undoes only what it did", function () {
  this.timeout(180_000);
  let s: Scenario;

  before(async () => {
    s = await startScenario();
  });
  after(async () => {
    await s?.stop();
  });

  const condition = (snapshot: VMSnapshot, type: string) =>
    snapshot.status?.conditions?.find((c) => c.type === type);

  describe("a guest someone else froze", () => {
    it("IfAvailable: Succeeded crash-consistent, never claims the freeze, and leaves their freeze in place", async () => {
      const domain = await s.newDomain({ rbdDisks: 1 });
      await s.host.hypervisor().fsFreeze(domain.name); // the administrator's freeze
      const watcher = await s.watchPhases("admin-frozen");
      await s.apply("admin-frozen", { quiesce: "IfAvailable" }, domain.name);
      const done = await s.waitFinal("admin-frozen");
      await watcher.stopAfter(done.status!.phase!);

      expect(watcher.phases).to.deep.equal(["Pending", "DisksSnapshotted", "Succeeded"]);
      const quiesced = condition(done, "Quiesced")!;
      expect(quiesced.status).to.equal("False");
      expect(quiesced.reason).to.equal("FreezeFailed");
      expect(quiesced.message).to.match(/already frozen by someone else/);
      expect(done.status!.frozenAt).to.equal(undefined);
      expect(await s.host.isFrozen(domain.name), "their freeze is still in place").to.equal(true);
      await s.host.hypervisor().fsThaw(domain.name);
    });

    it("Required: Failed QuiesceFailed before any disk is snapshotted, their freeze still in place", async () => {
      const domain = await s.newDomain({ rbdDisks: 1 });
      await s.host.hypervisor().fsFreeze(domain.name);
      await s.apply("admin-frozen-required", { quiesce: "Required" }, domain.name);
      const done = await s.waitFinal("admin-frozen-required");
      expect(done.status!.phase).to.equal("Failed");
      expect(done.status!.error?.reason).to.equal("QuiesceFailed");
      expect(await s.groupSnapshots(domain.name)).to.deep.equal([]);
      expect(await s.host.isFrozen(domain.name), "their freeze is still in place").to.equal(true);
      await s.host.hypervisor().fsThaw(domain.name);
    });
  });
});
