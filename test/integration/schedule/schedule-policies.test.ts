// What a VMSnapshotSchedule's policies do on real parts (the real kube-apiserver + etcd, real
// Ceph, the daemon-hosted libvirt test driver, one agent):
// - concurrencyPolicy at an instant that comes while the previous run is still in progress. The
//   run is held by Ceph: the OSD is paused just before an instant and resumed after the next, and
//   the agent's Ceph timeout outlasts that, so the run waits instead of failing. Forbid (the
//   default) must create no second snapshot of the domain and count the instant skipped; Allow,
//   held the same way, shows that the agent did decide that instant and would have created it.
// - Deleting a schedule with propagationPolicy=Orphan: the agent lets go of its finalizer without
//   deleting the runs. The test control plane runs no garbage collector, so the API server's
//   `orphan` finalizer and the runs' owner references stay until the test does the collector's
//   part.
import { expect } from "chai";
import { setTimeout as sleep } from "node:timers/promises";
import { SCHEDULE_FINALIZER } from "../../../src/api/schedule-types.ts";
import type { VMSnapshot } from "../../../src/api/types.ts";
import { runName } from "../../../src/schedule/names.ts";
import { startScenario, type Scenario } from "../../support/controller/snapshot-scenario.ts";
import { parseExposition, valueOf } from "../../support/exposition.ts";
import { schedulesIn, type ScheduleClient } from "../../support/kube/vmsnapshotschedules.ts";
import { waitFor } from "../../support/processes.ts";

/** Never fires during a test: for the schedule that owns made-up history. */
const NEVER_DURING_TEST = "0 0 1 1 *";
/** What must happen before the first instant: schedules created and planned. */
const LEAD_MS = 10_000;
/** Longer than the hold (pause before T1, resume after T2): Ceph calls wait, they do not fail. */
const CEPH_TIMEOUT_S = 150;

describe("VMSnapshotSchedule policies on real parts", function () {
  this.timeout(300_000);
  let s: Scenario;
  let schedules: ScheduleClient;

  const names = (runs: VMSnapshot[]) => runs.map((r) => r.metadata.name!);
  const isFinal = (run: VMSnapshot) => ["Succeeded", "Failed"].includes(run.status?.phase ?? "");
  const vmsnapCephSnapshots = async (image: string) =>
    (await s.imageSnapshots(image)).filter((n) => n.startsWith("vmsnap-"));

  before(async () => {
    s = await startScenario({ cephOpTimeoutSeconds: CEPH_TIMEOUT_S });
    schedules = schedulesIn(s.cp, s.namespace);
  });

  after(async () => {
    s?.ceph.resumeOsd();
    await s?.stop();
  });

  describe("deleting a schedule with propagationPolicy=Orphan", () => {
    it("keeps its runs and their Ceph snapshots: the agent removes only its own finalizer", async () => {
      const domain = await s.newDomain({ rbdDisks: 1 });
      const schedule = await schedules.apply("o", {
        schedule: NEVER_DURING_TEST,
        template: { source: { domain: domain.name, node: s.nodeName } },
      });
      const hour = Math.floor(Date.now() / 3_600_000) * 3_600_000;
      const made = [
        await schedules.createRun(schedule, new Date(hour - 2 * 3_600_000)),
        await schedules.createRun(schedule, new Date(hour - 3_600_000)),
      ];
      for (const run of made)
        expect((await s.waitFinal(run.metadata.name!)).status?.phase).to.equal("Succeeded");
      const cephBefore = await vmsnapCephSnapshots(domain.images[0]!);
      expect(cephBefore).to.have.length(2);
      await waitFor(
        "the agent's finalizer on the schedule",
        async () =>
          (await schedules.get("o"))?.metadata.finalizers?.includes(SCHEDULE_FINALIZER) === true,
        10_000,
      );

      const deleted = await s.cp.kubectl([
        "delete",
        "vmsnapsched",
        "o",
        "-n",
        s.namespace,
        "--cascade=orphan",
        "--wait=false",
      ]);
      expect(deleted.code, deleted.stderr).to.equal(0);
      // The agent deletes runs before it lets go of its finalizer; with Orphan it must not.
      await waitFor(
        "the agent to remove its finalizer, leaving the API server's orphan finalizer",
        async () =>
          JSON.stringify((await schedules.get("o"))?.metadata.finalizers) === '["orphan"]',
        15_000,
      );
      const kept = await schedules.runs("o");
      expect(names(kept)).to.deep.equal(names(made));
      for (const run of kept) {
        expect(run.metadata.deletionTimestamp, run.metadata.name).to.equal(undefined);
        expect(run.status?.phase).to.equal("Succeeded");
        // Removing them is the garbage collector's part, which this control plane does not run.
        expect(run.metadata.ownerReferences?.[0]?.uid).to.equal(schedule.metadata.uid);
      }
      expect(await vmsnapCephSnapshots(domain.images[0]!)).to.have.members(cephBefore);

      // The garbage collector's part: owner references off the runs, then the orphan finalizer.
      for (const run of kept) {
        const r = await s.cp.kubectl([
          "patch",
          "vmsnap",
          run.metadata.name!,
          "-n",
          s.namespace,
          "--type=json",
          "-p",
          '[{"op":"remove","path":"/metadata/ownerReferences"}]',
        ]);
        expect(r.code, r.stderr).to.equal(0);
      }
      const released = await s.cp.kubectl([
        "patch",
        "vmsnapsched",
        "o",
        "-n",
        s.namespace,
        "--type=merge",
        "-p",
        '{"metadata":{"finalizers":null}}',
      ]);
      expect(released.code, released.stderr).to.equal(0);
      await waitFor("the schedule to be gone", async () => !(await schedules.get("o")), 10_000);
      // Time for the agent to act on its going, were it to touch the runs.
      await sleep(3_000);
      expect(names(await schedules.runs("o"))).to.deep.equal(names(made));
      expect(await vmsnapCephSnapshots(domain.images[0]!)).to.have.members(cephBefore);
    });
  });

  describe("an instant while the previous run is still in progress", () => {
    it("Forbid (the default) creates no second snapshot of the domain and counts the instant skipped; Allow creates it", async () => {
      const forbidDomain = await s.newDomain({ rbdDisks: 1 });
      const allowDomain = await s.newDomain({ rbdDisks: 1 });
      const t1 = new Date(Math.ceil((Date.now() + LEAD_MS) / 60_000) * 60_000);
      const t2 = new Date(t1.getTime() + 60_000);
      // freezeTimeout 2m: a run held while frozen still ends well before its freeze deadline.
      const template = (domain: string) => ({
        source: { domain, node: s.nodeName },
        freezeTimeout: "2m",
      });
      // Only T1's and T2's minutes: with every minute, a minute boundary crossed while the test
      // sets up (a slow, loaded run) fired a run before T1 and the counts were off by one.
      const twoInstants = `${t1.getUTCMinutes()},${t2.getUTCMinutes()} * * * *`;
      await schedules.apply("f", { schedule: twoInstants, template: template(forbidDomain.name) });
      await schedules.apply("l", {
        schedule: twoInstants,
        template: template(allowDomain.name),
        concurrencyPolicy: "Allow",
      });
      /** Waits until both schedules' status `field` says `at`. */
      const bothAt = (what: string, field: "nextScheduleTime" | "lastConsideredTime", at: Date) =>
        waitFor(
          what,
          async () => {
            for (const name of ["f", "l"])
              if ((await schedules.get(name))?.status?.[field] !== at.toISOString()) return false;
            return true;
          },
          10_000,
        );
      await bothAt("the agent to plan both schedules for T1", "nextScheduleTime", t1);

      // Ceph stops answering just before T1: both runs of T1 start and wait on it past T2.
      await sleep(t1.getTime() - 1_000 - Date.now());
      s.ceph.pauseOsd();
      try {
        await waitFor(
          "the runs of T1",
          async () =>
            (await schedules.runs("f")).length === 1 && (await schedules.runs("l")).length === 1,
          15_000,
        );
        await sleep(t2.getTime() + 3_000 - Date.now());
        await bothAt("both schedules to decide T2", "lastConsideredTime", t2);

        const forbidRuns = await schedules.runs("f");
        expect(names(forbidRuns), "Forbid: only T1's run").to.deep.equal([runName("f", t1)]);
        expect(isFinal(forbidRuns[0]!), "T1's run is still in progress at T2").to.equal(false);
        const status = (await schedules.get("f"))!.status!;
        expect(status.skippedRuns).to.equal(1);
        expect(status.lastScheduleTime).to.equal(t1.toISOString());
        expect(status.snapshots?.inProgress).to.equal(1);
        expect(await schedules.eventReasons("f")).to.include("RunSkipped");
        const exposition = parseExposition(
          await (await fetch(`http://127.0.0.1:${s.controller.metricsPort}/metrics`)).text(),
        );
        expect(valueOf(exposition, "vmsnap_schedule_runs_total", { result: "skipped" })).to.equal(
          1,
        );

        const allowRuns = await schedules.runs("l");
        expect(names(allowRuns), "Allow: T2's run too").to.deep.equal([
          runName("l", t1),
          runName("l", t2),
        ]);
        expect(allowRuns.filter(isFinal), "both wait").to.deep.equal([]);
        expect((await schedules.get("l"))!.status!.skippedRuns ?? 0).to.equal(0);
      } finally {
        s.ceph.resumeOsd();
      }

      // Ceph answers again: the held run, and both of Allow's one after the other, succeed.
      for (const name of [runName("f", t1), runName("l", t1), runName("l", t2)])
        expect((await s.waitFinal(name, 90_000)).status?.phase, name).to.equal("Succeeded");
      expect(names(await schedules.runs("f"))).to.deep.equal([runName("f", t1)]);
    });
  });
});
