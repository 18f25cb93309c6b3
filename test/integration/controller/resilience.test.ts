// The thaw guarantee and crash safety, on real parts: the controller is SIGKILLed while a guest
// is frozen (at each step, repeatedly), a Ceph OSD stops during the disk step, and the API server
// restarts mid-run. Whatever happens, the guest is thawed within freezeTimeout + 1 s, every
// snapshot ends Succeeded or Failed with a reason, and nothing is left behind in Ceph.
import { existsSync } from "node:fs";
import { setTimeout as sleep } from "node:timers/promises";
import { expect } from "chai";
import type { Phase, VMSnapshot } from "../../../src/api/types.ts";
import { waitFor } from "../../support/processes.ts";
import {
  startScenario,
  type Scenario,
  type TestDomain,
} from "../../support/controller/snapshot-scenario.ts";

const FREEZE_TIMEOUT_MS = 5_000;

describe("controller resilience", function () {
  this.timeout(240_000);
  let s: Scenario;

  before(async () => {
    s = await startScenario({ cephOpTimeoutSeconds: 2 });
  });
  after(async () => {
    s?.ceph.resumeOsd();
    await s?.stop();
  });

  /** Polls the (daemon-hosted) guest until it is no longer frozen; returns when that was seen. */
  async function thawedAt(domain: string, budgetMs: number): Promise<number> {
    await waitFor(
      `${domain} to be thawed`,
      async () => !(await s.host.isFrozen(domain)),
      budgetMs,
      50,
    );
    return Date.now();
  }

  /** Nothing of a failed attempt is left: no group snapshot, no image snapshot, no memory file. */
  async function expectNoArtefacts(domain: TestDomain, snapshot: VMSnapshot): Promise<void> {
    expect(await s.groupSnapshots(domain.name), "group snapshots").to.deep.equal([]);
    for (const image of domain.images)
      expect(await s.imageSnapshots(image), `snapshots of ${image}`).to.deep.equal([]);
    expect(
      existsSync(`${s.controller.memoryDir}/vmsnap-${snapshot.metadata.uid}.mem`),
      "memory file",
    ).to.equal(false);
  }

  const kills: Array<{ step: string; memory: boolean; stall: boolean; at: Phase }> = [
    { step: "right after the freeze", memory: false, stall: false, at: "Frozen" },
    { step: "during the disk snapshot (OSD stalled)", memory: false, stall: true, at: "Frozen" },
    { step: "during the memory save", memory: true, stall: false, at: "DisksSnapshotted" },
  ];

  for (const kill of kills) {
    for (const round of [1, 2]) {
      it(`SIGKILL ${kill.step}, round ${round}: thawed within freezeTimeout + 1 s, ends with a reason, nothing orphaned`, async () => {
        const domain = await s.newDomain({ rbdDisks: 2, label: "kill" });
        const name = `kill-${kill.memory ? "mem" : "disk"}-${kill.stall ? "stall" : "fast"}-${round}`;
        // Stall the OSD the moment the freeze deadline is written: RBD groups are prepared
        // before that, and the disk snapshot starts right after the freeze.
        const stall = kill.stall
          ? await s.watchFor(
              name,
              (o) => o.status?.freezeDeadline !== undefined,
              () => s.ceph.pauseOsd(),
            )
          : undefined;
        const reached = await s.watchFor(
          name,
          (o) => o.status?.phase === kill.at,
          () => {
            if (!kill.stall) s.controller.kill("SIGKILL");
          },
        );
        try {
          await s.apply(
            name,
            { memory: kill.memory, freezeTimeout: `${FREEZE_TIMEOUT_MS / 1000}s` },
            domain.name,
          );
          const seen = await reached.seen;
          if (kill.stall) {
            await sleep(300);
            s.controller.kill("SIGKILL");
          }
          const frozenAt = Date.parse(seen.status!.frozenAt!);
          const thawed = await thawedAt(domain.name, FREEZE_TIMEOUT_MS + 2_000);
          expect(thawed - frozenAt, "ms from freeze to thawed").to.be.at.most(
            FREEZE_TIMEOUT_MS + 1_000,
          );
          expect(await s.host.domainState(domain.name), "vCPUs running").to.equal("running");
        } finally {
          stall?.stop();
          reached.stop();
          s.ceph.resumeOsd();
        }
        await s.startController({ cephOpTimeoutSeconds: 2 });
        const done = await s.waitFinal(name, 90_000);
        expect(["Succeeded", "Failed"]).to.include(done.status?.phase);
        if (done.status?.phase === "Failed") {
          expect(done.status.error?.reason).to.be.a("string").and.have.length.above(0);
          await expectNoArtefacts(domain, done);
        } else {
          expect(await s.groupSnapshots(domain.name)).to.deep.equal([
            `vmsnap-${done.metadata.uid}`,
          ]);
        }
        expect(await s.host.isFrozen(domain.name)).to.equal(false);
      });
    }
  }

  it("an OSD stopped during the disk step: thawed within budget, Failed with StorageTimeout; deletion cleans up", async () => {
    const domain = await s.newDomain({ rbdDisks: 2, label: "osd" });
    const stall = await s.watchFor(
      "osd-stopped",
      (o) => o.status?.freezeDeadline !== undefined,
      () => s.ceph.pauseOsd(),
    );
    let done: VMSnapshot;
    try {
      await s.apply("osd-stopped", { freezeTimeout: "10s" }, domain.name);
      done = await s.waitFinal("osd-stopped", 60_000);
      expect(done.status?.phase).to.equal("Failed");
      expect(done.status?.error?.reason).to.equal("StorageTimeout");
      const window = Date.parse(done.status!.thawedAt!) - Date.parse(done.status!.frozenAt!);
      expect(window, "frozen window (ms)").to.be.at.most(10_000 + 1_000);
      expect(await s.host.isFrozen(domain.name)).to.equal(false);
    } finally {
      stall.stop();
      s.ceph.resumeOsd();
    }
    const deleted = await s.cp.kubectl([
      "delete",
      "vmsnap",
      "osd-stopped",
      "-n",
      s.namespace,
      "--timeout=90s",
    ]);
    expect(deleted.code, deleted.stderr).to.equal(0);
    await expectNoArtefacts(domain, done);
  });

  it("kube-apiserver restarted mid-run: every snapshot still completes", async () => {
    const domains = await Promise.all(
      [1, 2, 3, 4].map(() => s.newDomain({ rbdDisks: 1, label: "api" })),
    );
    await Promise.all(domains.map((d, i) => s.apply(`api-${i}`, {}, d.name)));
    await s.cp.restartApiserver();
    const results = await Promise.all(domains.map((_, i) => s.waitFinal(`api-${i}`, 90_000)));
    expect(results.map((r) => r.status?.phase)).to.deep.equal([
      "Succeeded",
      "Succeeded",
      "Succeeded",
      "Succeeded",
    ]);
    for (const d of domains) expect(await s.host.isFrozen(d.name)).to.equal(false);
  });
});
