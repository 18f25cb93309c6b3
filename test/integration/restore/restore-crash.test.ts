// A restore survives its agent: SIGKILLed at each phase a watch can catch on the test driver, a
// new agent picks the restore up from status and finishes it, and the domain ends running on
// the snapshot's disks. (The RAM phases need a real QEMU guest: test/e2e covers the thaw.)
import { expect } from "chai";
import type { RestorePhase } from "../../../src/api/restore-types.ts";
import { startScenario, type Scenario } from "../../support/controller/snapshot-scenario.ts";
import { imageDigest, scribble } from "../../support/ceph/image-content.ts";
import type { VMRestores } from "../../support/kube/vmrestores.ts";
import { waitFor } from "../../support/processes.ts";

describe("VMRestore when its agent is SIGKILLed mid-way (test-driver libvirt, Ceph)", function () {
  this.timeout(180_000);
  let s: Scenario;
  let restores: VMRestores;

  before(async () => {
    s = await startScenario();
    restores = s.restores;
  });
  after(async () => {
    await s?.stop();
  });

  const contentOf = (image: string) => imageDigest(s.ceph, image);

  const KILL_AT: RestorePhase[] = ["Pending", "TargetStopped", "DisksRestored"];
  for (const phase of KILL_AT) {
    it(`killed once it reached ${phase}: a new agent finishes it, the domain runs on the snapshot's disks`, async () => {
      const domain = await s.newDomain({ rbdDisks: 2, persistent: true });
      const name = `crash-${phase.toLowerCase()}`;
      const before = await Promise.all(domain.images.map(contentOf));
      await s.apply(`${name}-snap`, {}, domain.name);
      expect((await s.waitFinal(`${name}-snap`)).status?.phase).to.equal("Succeeded");
      for (const image of domain.images) await scribble(s.ceph, image, 128);

      let killed = false;
      const watch = await restores.watchFor(
        name,
        (r) => r.status?.phase === phase,
        () => {
          killed = true;
          s.controller.kill("SIGKILL");
        },
      );
      await restores.apply(name, {
        snapshotName: `${name}-snap`,
        target: { inPlace: {} },
        stopRunningTarget: true,
      });
      // Every phase is written to status, so the watch sees it: a kill that never came fails here.
      await waitFor(`the watch to see ${phase}`, () => killed, 30_000, 10);
      watch.stop();
      await s.startController();
      const done = await restores.waitFinal(name);
      expect(done.status?.phase, JSON.stringify(done.status?.error)).to.equal("Succeeded");
      expect(await Promise.all(domain.images.map(contentOf))).to.deep.equal(before);
      expect((await s.host.hypervisor().domainInfo(domain.name)).state).to.equal("running");
      const pinned = (await s.get(`${name}-snap`)).metadata.finalizers ?? [];
      expect(pinned.filter((f) => f.startsWith("vmsnap.io/restore-"))).to.deep.equal([]);
    });
  }
});
