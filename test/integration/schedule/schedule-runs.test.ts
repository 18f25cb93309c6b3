// VMSnapshotSchedules run by real agents: the real kube-apiserver + etcd, real Ceph, and the
// daemon-hosted libvirt test driver, with two agents (two nodes) so that one can be killed across
// a scheduled instant while the other keeps time.
//
// Schedules have five cron fields (no seconds; run names carry the minute), so the runs here fire
// at the next whole minute: the suite waits for one instant, T1 (≤ 68 s), and does everything
// that does not need it (retention, deletion) while it waits.
//
// The test control plane runs no kube-controller-manager, hence no garbage collector: owner
// references cascade nothing here. Deleting a schedule still deletes its runs because the agent
// holds a finalizer on the schedule until it has deleted them, which is what the test proves.
import { expect } from "chai";
import { SCHEDULED_AT_ANNOTATION } from "../../../src/api/schedule-types.ts";
import type { VMSnapshot } from "../../../src/api/types.ts";
import { SCHEDULE_GAUGE_NAMES } from "../../../src/metrics/index.ts";
import { runName } from "../../../src/schedule/names.ts";
import { startController, type ControllerProcess } from "../../support/controller/process.ts";
import {
  startScenario,
  type Scenario,
  type TestDomain,
} from "../../support/controller/snapshot-scenario.ts";
import { parseExposition, samplesOf, valueOf } from "../../support/exposition.ts";
import { schedulesIn, type ScheduleClient } from "../../support/kube/vmsnapshotschedules.ts";
import { waitFor } from "../../support/processes.ts";

const EVERY_MINUTE = "* * * * *";
/** Never fires during a test: for the retention and deletion schedule, which owns made-up history. */
const NEVER_DURING_TEST = "0 0 1 1 *";
/** What must happen before T1: schedules created and seen, agent B killed. */
const LEAD_MS = 8_000;

describe("VMSnapshotSchedule run by the agents on real parts", function () {
  this.timeout(240_000);
  let s: Scenario;
  let schedules: ScheduleClient;
  let nodeB: string;
  let agentB: ControllerProcess | undefined;
  let arrivals: Awaited<ReturnType<ScheduleClient["watchArrivals"]>>;
  let t1: Date;
  const domains: Record<"a" | "b" | "s" | "r" | "rNoAgent", TestDomain> = {} as never;

  const startAgentB = () =>
    startController({
      kubeconfig: s.cp.kubeconfigPath,
      nodeName: nodeB,
      namespace: s.namespace,
      libvirtUri: s.host.uri,
      memoryDir: s.controller.memoryDir,
      ceph: {
        confPath: s.ceph.confPath,
        clientId: s.ceph.clientId,
        keyringPath: s.ceph.keyringPath,
      },
    });
  const untilT1Plus = (ms: number) => sleep(t1.getTime() + ms - Date.now());
  const rbdSnapshotOf = (run: VMSnapshot) => `vmsnap-${run.metadata.uid}`;
  const names = (runs: VMSnapshot[]) => runs.map((r) => r.metadata.name!);
  /** Agent A's per-schedule series of `schedule`, by metric name (absent ones left out). */
  const gaugesOf = async (schedule: string): Promise<Record<string, number>> => {
    const exposition = parseExposition(
      await (await fetch(`http://127.0.0.1:${s.controller.metricsPort}/metrics`)).text(),
    );
    return Object.fromEntries(
      Object.values(SCHEDULE_GAUGE_NAMES).flatMap((name) =>
        samplesOf(exposition, name, { namespace: s.namespace, schedule }).map((x) => [
          name,
          x.value,
        ]),
      ),
    );
  };
  /** What the missed-success alert reads of a schedule, as its status and metadata say it. */
  const expectGauges = async (
    schedule: string,
    expected: { intervalSeconds: number; suspended: 0 | 1; retained: number },
  ) => {
    const object = (await schedules.get(schedule))!;
    const lastSuccess = object.status?.lastSuccessfulTime;
    // Set by the pass that wrote the status just read, a moment after its write.
    await waitFor(
      `schedule ${schedule}'s series to match its status`,
      async () => {
        const gauges = await gaugesOf(schedule);
        if (lastSuccess === undefined) {
          expect(gauges, "no last-success series before a success").not.to.have.property(
            "vmsnap_schedule_last_success_timestamp_seconds",
          );
        } else {
          expect(gauges.vmsnap_schedule_last_success_timestamp_seconds).to.be.closeTo(
            Date.parse(lastSuccess) / 1000,
            0.001,
          );
        }
        expect(gauges).to.include({
          vmsnap_schedule_created_timestamp_seconds:
            Date.parse(object.metadata.creationTimestamp as unknown as string) / 1000,
          vmsnap_schedule_interval_seconds: expected.intervalSeconds,
          vmsnap_schedule_suspended: expected.suspended,
          vmsnap_schedule_snapshots_retained: expected.retained,
        });
        return true;
      },
      5_000,
    );
  };

  before(async () => {
    s = await startScenario();
    nodeB = `${s.nodeName}-b`;
    schedules = schedulesIn(s.cp, s.namespace);
    agentB = await startAgentB();
    for (const key of ["a", "b", "s", "r"] as const)
      domains[key] = await s.newDomain({ rbdDisks: 1 });
    domains.rNoAgent = await s.newDomain({ rbdDisks: 1, guestAgent: false });
    arrivals = await schedules.watchArrivals();

    // T1: the first whole minute far enough ahead to set everything up before it.
    t1 = new Date(Math.ceil((Date.now() + LEAD_MS) / 60_000) * 60_000);
    const template = (domain: TestDomain, node = s.nodeName) => ({
      source: { domain: domain.name, node },
    });
    await schedules.apply("a", { schedule: EVERY_MINUTE, template: template(domains.a) });
    await schedules.apply("b", { schedule: EVERY_MINUTE, template: template(domains.b, nodeB) });
    await schedules.apply("s", {
      schedule: EVERY_MINUTE,
      template: template(domains.s),
      suspend: true,
      startingDeadline: "10s",
    });
    // Agent B has taken schedule b in hand (it knows T1 is next) before it dies.
    await waitFor(
      "agent B to plan schedule b",
      async () => (await schedules.get("b"))?.status?.nextScheduleTime === t1.toISOString(),
      10_000,
    );
    await agentB.stop("SIGKILL");
    expect(Date.now(), "set-up finished before T1").to.be.below(t1.getTime());
  });

  afterEach(function () {
    // What the agents said about schedules is the first thing anyone debugging a failure needs.
    if (this.currentTest?.state !== "failed") return;
    for (const [agent, controller] of [
      ["A", s?.controller],
      ["B", agentB],
    ] as const) {
      let log = "";
      try {
        log = controller?.log() ?? "";
      } catch {
        // A stopped agent's log went with its run folder.
      }
      const lines = log.split("\n").filter((l) => /schedul/i.test(l));
      console.log(`--- agent ${agent}, schedule lines ---\n${lines.slice(-30).join("\n")}`);
    }
  });

  after(async () => {
    arrivals?.stop();
    await agentB?.stop();
    await s?.stop();
  });

  describe("retention and deletion (no instant needed)", () => {
    // Made-up history of a schedule that will not fire: 3 Succeeded and 2 Failed runs, created
    // as the agent creates runs, each really taken (Ceph snapshots and all) by agent A.
    const hoursAgo = (h: number) =>
      new Date(Math.floor(Date.now() / 60_000) * 60_000 - h * 3600_000);
    const history = [
      { key: "h1", at: hoursAgo(3), fails: false },
      { key: "f1", at: hoursAgo(2.5), fails: true },
      { key: "h2", at: hoursAgo(2), fails: false },
      { key: "f2", at: hoursAgo(1.5), fails: true },
      { key: "h3", at: hoursAgo(1), fails: false },
    ];
    const runOf = (key: string) => runName("r", history.find((h) => h.key === key)!.at);
    /** The Ceph snapshot name each history run gets (from its UID). */
    const cephNames = new Map<string, string>();

    it("keepLast 2, keepFailed 1: keeps the two newest Succeeded and the newest Failed, deletes the rest with their Ceph snapshots", async () => {
      const schedule = await schedules.apply("r", {
        schedule: NEVER_DURING_TEST,
        template: { source: { domain: domains.r.name, node: s.nodeName } },
        retention: { keepLast: 2, keepFailed: 1 },
      });
      for (const h of history) {
        const domain = h.fails ? domains.rNoAgent : domains.r;
        // Failed on purpose: quiesce Required on a domain without a guest agent.
        const run = await schedules.createRun(schedule, h.at, {
          source: { domain: domain.name, node: s.nodeName },
          quiesce: "Required",
        });
        cephNames.set(h.key, rbdSnapshotOf(run));
      }
      await waitFor(
        "retention to leave the three runs the policy keeps, all finished",
        async () => {
          const runs = await schedules.runs("r");
          return (
            runs.length === 3 &&
            runs.every(
              (r) =>
                r.status?.phase !== undefined && ["Succeeded", "Failed"].includes(r.status.phase),
            )
          );
        },
        60_000,
      );
      const left = await schedules.runs("r");
      expect(names(left)).to.have.members([runOf("h2"), runOf("h3"), runOf("f2")]);
      expect(left.find((r) => r.metadata.name === runOf("f2"))?.status?.phase).to.equal("Failed");
      // The pruned ones had finished: their Events outlive them.
      expect(await schedules.eventReasons(runOf("h1"))).to.include("Succeeded");
      expect(await schedules.eventReasons(runOf("f1"))).to.include("GuestAgentUnavailable");

      const inCeph = (await s.imageSnapshots(domains.r.images[0]!)).filter((n) =>
        n.startsWith("vmsnap-"),
      );
      expect(inCeph, "only the kept runs' Ceph snapshots").to.have.members([
        cephNames.get("h2")!,
        cephNames.get("h3")!,
      ]);

      const status = (await schedules.get("r"))!.status!;
      expect(status.snapshots).to.deep.equal({ inProgress: 0, succeeded: 2, failed: 1 });
      expect(status.lastSuccessfulTime).to.be.a("string");
      // The newest finished run (h3) succeeded: Ready.
      const ready = status.conditions?.find((c) => c.type === "Ready");
      expect(ready?.status, ready?.message).to.equal("True");
      // What the missed-success alert reads: h3's completion; a yearly schedule's period is the
      // year from this 1 January to the next.
      const year = new Date().getUTCFullYear();
      await expectGauges("r", {
        intervalSeconds: (Date.UTC(year + 1, 0, 1) - Date.UTC(year, 0, 1)) / 1000,
        suspended: 0,
        retained: 3,
      });
    });

    it("deleting the schedule deletes its runs and their Ceph snapshots (the agent's finalizer, no garbage collector)", async () => {
      const before = await schedules.get("r");
      expect(before?.metadata.finalizers).to.include("vmsnap.io/schedule-runs");
      const deleted = await s.cp.kubectl([
        "delete",
        "vmsnapsched",
        "r",
        "-n",
        s.namespace,
        "--timeout=60s",
      ]);
      expect(deleted.code, deleted.stderr).to.equal(0);
      expect(await schedules.get("r")).to.equal(undefined);
      expect(await schedules.runs("r")).to.deep.equal([]);
      const inCeph = (await s.imageSnapshots(domains.r.images[0]!)).filter((n) =>
        n.startsWith("vmsnap-"),
      );
      expect(inCeph).to.deep.equal([]);
      expect(await gaugesOf("r"), "a deleted schedule's series are gone").to.deep.equal({});
    });
  });

  describe("at a scheduled instant", () => {
    it("runs on time, once, with its deterministic name, and the run succeeds", async () => {
      const name = runName("a", t1);
      await waitFor("the run of T1 to appear", () => arrivals.arrivals.has(name), 75_000, 10);
      const latenessMs = arrivals.arrivals.get(name)! - t1.getTime();
      console.log(`      lateness of ${name}: ${latenessMs} ms after ${t1.toISOString()}`);
      // Timer plus one create plus watch delivery; seconds would mean it polls.
      expect(latenessMs).to.be.within(0, 2_000);

      const run = await s.waitFinal(name);
      expect(run.status?.phase).to.equal("Succeeded");
      expect(run.metadata.annotations?.[SCHEDULED_AT_ANNOTATION]).to.equal(t1.toISOString());
      expect(run.metadata.ownerReferences?.[0]).to.include({
        kind: "VMSnapshotSchedule",
        name: "a",
        controller: true,
      });
      expect(run.spec.source).to.deep.equal({ domain: domains.a.name, node: s.nodeName });
      expect(names(await schedules.runs("a"))).to.deep.equal([name]);

      await waitFor(
        "schedule a's status to show the success",
        async () => (await schedules.get("a"))?.status?.snapshots?.succeeded === 1,
        10_000,
      );
      const status = (await schedules.get("a"))!.status!;
      expect(status.lastScheduleTime).to.equal(t1.toISOString());
      expect(status.nextScheduleTime).to.equal(new Date(t1.getTime() + 60_000).toISOString());
      expect(status.missedRuns ?? 0).to.equal(0);

      const exposition = parseExposition(
        await (await fetch(`http://127.0.0.1:${s.controller.metricsPort}/metrics`)).text(),
      );
      expect(valueOf(exposition, "vmsnap_schedule_runs_total", { result: "created" })).to.equal(1);
      expect(valueOf(exposition, "vmsnap_schedule_run_lateness_seconds_count")).to.equal(1);
      await expectGauges("a", { intervalSeconds: 60, suspended: 0, retained: 1 });
      expect((await gaugesOf("a")).vmsnap_schedule_last_success_timestamp_seconds).to.be.within(
        t1.getTime() / 1000,
        Date.now() / 1000,
      );
      // Suspended and never succeeded: no last success, so the alert measures from its creation,
      // and suspended 1 keeps it quiet.
      await expectGauges("s", { intervalSeconds: 60, suspended: 1, retained: 0 });
    });

    it("an agent down across the instant runs it once when back (late, no burst), and a kill right after creating it does not run it twice", async () => {
      const name = runName("b", t1);
      await untilT1Plus(3_000);
      expect(
        names(await schedules.runs("b")),
        "agent A does not run node B's schedule",
      ).to.deep.equal([]);
      agentB = await startAgentB();
      await waitFor("agent B to run T1 late", () => arrivals.arrivals.has(name), 30_000, 10);
      console.log(
        `      ${name} created ${arrivals.arrivals.get(name)! - t1.getTime()} ms after its instant (agent B was down)`,
      );
      // Killed the moment the run exists, and its record in status undone: as if the agent
      // died between creating the run and writing status. The next agent decides T1 again.
      await agentB.stop("SIGKILL");
      const lost = await s.cp.kubectl([
        "patch",
        "vmsnapsched",
        "b",
        "-n",
        s.namespace,
        "--subresource=status",
        "--type=merge",
        "-p",
        JSON.stringify({ status: { lastConsideredTime: null, lastScheduleTime: null } }),
      ]);
      expect(lost.code, lost.stderr).to.equal(0);
      agentB = await startAgentB();

      const run = await s.waitFinal(name);
      // Killed the moment the run existed, agent B may have been inside the run's frozen window:
      // such a snapshot ends Interrupted (never half-done), otherwise Succeeded. Either way once.
      const ended = run.status?.phase;
      if (ended === "Failed") expect(run.status?.error?.reason).to.equal("Interrupted");
      else expect(ended).to.equal("Succeeded");
      await waitFor(
        "schedule b's status to settle",
        async () => {
          const counts = (await schedules.get("b"))?.status?.snapshots;
          return (ended === "Succeeded" ? counts?.succeeded : counts?.failed) === 1;
        },
        15_000,
      );
      expect(names(await schedules.runs("b"))).to.deep.equal([name]);
      const status = (await schedules.get("b"))!.status!;
      expect(status.lastScheduleTime).to.equal(t1.toISOString());
      expect(status.lastConsideredTime).to.equal(t1.toISOString());
      expect(status.missedRuns ?? 0, "nothing was missed").to.equal(0);
      expect(await schedules.eventReasons("b")).not.to.include("NameConflict");
    });

    it("suspend stops runs; lifting it past startingDeadline counts the instant missed instead of running it late", async () => {
      await waitFor(
        "schedule a's run of T1",
        () => arrivals.arrivals.has(runName("a", t1)),
        75_000,
      );
      expect(await schedules.runs("s")).to.deep.equal([]);
      const suspended = (await schedules.get("s"))!.status!;
      expect(suspended.conditions?.find((c) => c.type === "Ready")).to.include({
        status: "True",
        reason: "Suspended",
      });
      expect(suspended.nextScheduleTime).to.equal(undefined);

      await untilT1Plus(11_000); // past startingDeadline: 10s
      await schedules.patchSpec("s", { suspend: false });
      await waitFor(
        "schedule s to decide T1",
        async () => (await schedules.get("s"))?.status?.lastConsideredTime === t1.toISOString(),
        10_000,
      );
      const resumed = (await schedules.get("s"))!.status!;
      expect(resumed.missedRuns).to.equal(1);
      expect(resumed.lastScheduleTime).to.equal(undefined);
      expect(resumed.nextScheduleTime).to.equal(new Date(t1.getTime() + 60_000).toISOString());
      expect(await schedules.runs("s"), "no late run").to.deep.equal([]);
    });
  });
});

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, Math.max(0, ms)));
}
