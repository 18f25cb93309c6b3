// A schedule's whole decision, over a fake clock: the run it creates (owner reference, labels,
// template), restarts that never create a run twice, concurrency, invalid specs, suspend,
// retention of its own runs only, status and kstatus conditions; and a simulated month of an
// hourly schedule with an outage, fed back through the plan as the reconcile loop would.
import { expect } from "chai";
import type { V1OwnerReference } from "@kubernetes/client-node";
import {
  SCHEDULE_LABEL,
  SCHEDULED_AT_ANNOTATION,
  type VMSnapshotSchedule,
  type VMSnapshotScheduleSpec,
} from "../../../src/api/schedule-types.ts";
import type { Phase, VMSnapshot } from "../../../src/api/types.ts";
import {
  isControlledBy,
  planSchedule,
  runsLabelSelector,
  type SchedulePlan,
} from "../../../src/schedule/plan.ts";

const UID = "3f1c0e6a-0000-4000-8000-000000000001";

function scheduleOf(
  spec: Partial<VMSnapshotScheduleSpec> = {},
  status?: VMSnapshotSchedule["status"],
): VMSnapshotSchedule {
  return {
    apiVersion: "vmsnap.io/v1alpha1",
    kind: "VMSnapshotSchedule",
    metadata: {
      name: "db-01",
      namespace: "tenant-a",
      uid: UID,
      generation: 4,
      creationTimestamp: new Date("2026-05-01T09:10:00Z"),
    },
    spec: {
      schedule: "0 * * * *",
      template: { source: { domain: "db-01", node: "hv-02" }, memory: false, quiesce: "Required" },
      ...spec,
    },
    ...(status && { status }),
  };
}

const ownerRef = (uid = UID): V1OwnerReference => ({
  apiVersion: "vmsnap.io/v1alpha1",
  kind: "VMSnapshotSchedule",
  name: "db-01",
  uid,
  controller: true,
  blockOwnerDeletion: true,
});

function run(
  scheduledAt: string,
  phase: Phase | undefined,
  extra: {
    owner?: V1OwnerReference | null;
    completed?: string;
    deleting?: boolean;
    name?: string;
  } = {},
): VMSnapshot {
  const at = new Date(scheduledAt);
  const name = extra.name ?? `db-01-${at.toISOString().slice(0, 16).replace(/[-T:]/g, "")}`;
  return {
    apiVersion: "vmsnap.io/v1alpha1",
    kind: "VMSnapshot",
    metadata: {
      name,
      namespace: "tenant-a",
      annotations: { [SCHEDULED_AT_ANNOTATION]: at.toISOString() },
      ...(extra.owner !== null && { ownerReferences: [extra.owner ?? ownerRef()] }),
      ...(extra.deleting && { deletionTimestamp: new Date(at.getTime() + 7_200_000) }),
    },
    spec: { source: { domain: "db-01", node: "hv-02" } },
    ...(phase && {
      status: {
        phase,
        ...(extra.completed && { completionTime: extra.completed }),
        ...(phase === "Failed" && {
          error: { reason: "GuestAgentUnavailable", message: "the guest agent did not answer" },
        }),
      },
    }),
  };
}

const condition = (plan: SchedulePlan, type: string) =>
  plan.status.conditions!.find((c) => c.type === type)!;

describe("schedule plan: creating a run", () => {
  const now = new Date("2026-05-01T10:00:00.200Z");

  it("creates the due run: owner reference (controller, blockOwnerDeletion), label, instant, template", () => {
    const schedule = scheduleOf();
    const plan = planSchedule(schedule, [], now);
    expect(plan.create).to.deep.equal({
      apiVersion: "vmsnap.io/v1alpha1",
      kind: "VMSnapshot",
      metadata: {
        name: "db-01-202605011000",
        namespace: "tenant-a",
        labels: { [SCHEDULE_LABEL]: "db-01" },
        annotations: { [SCHEDULED_AT_ANNOTATION]: "2026-05-01T10:00:00.000Z" },
        ownerReferences: [ownerRef()],
      },
      spec: { source: { domain: "db-01", node: "hv-02" }, memory: false, quiesce: "Required" },
    });
    expect(plan.create!.spec, "a copy, not the schedule's own object").to.not.equal(
      schedule.spec.template,
    );
    expect(isControlledBy(plan.create!, schedule)).to.equal(true);
    expect(runsLabelSelector(schedule)).to.equal(`${SCHEDULE_LABEL}=db-01`);
    expect(plan.delete).to.deep.equal([]);
    expect(plan.requeueAfterMs).to.equal(3_600_000 - 200);
    expect(plan.events.map((e) => e.reason)).to.deep.equal(["SnapshotCreated"]);
  });

  it("records the run in status: last schedule, considered and next times, counts, kstatus conditions", () => {
    const plan = planSchedule(scheduleOf(), [], now);
    expect(plan.status).to.deep.include({
      observedGeneration: 4,
      lastScheduleTime: "2026-05-01T10:00:00.000Z",
      lastConsideredTime: "2026-05-01T10:00:00.000Z",
      nextScheduleTime: "2026-05-01T11:00:00.000Z",
      snapshots: { inProgress: 1, succeeded: 0, failed: 0 },
    });
    expect(condition(plan, "Ready")).to.deep.include({
      status: "True",
      reason: "Scheduled",
      observedGeneration: 4,
    });
    expect(condition(plan, "Reconciling")).to.deep.include({
      status: "True",
      reason: "RunInProgress",
    });
    expect(condition(plan, "Stalled")).to.deep.include({ status: "False" });
    expect(condition(plan, "Ready").lastTransitionTime).to.equal(now.toISOString());
  });

  it("does not create the run again when it already exists (a restart lost the status write)", () => {
    const plan = planSchedule(scheduleOf(), [run("2026-05-01T10:00:00Z", "Frozen")], now);
    expect(plan.create).to.equal(undefined);
    expect(plan.status.lastScheduleTime).to.equal("2026-05-01T10:00:00.000Z");
    expect(plan.status.lastConsideredTime).to.equal("2026-05-01T10:00:00.000Z");
  });

  it("does not take over a VMSnapshot of the same name that another owner controls", () => {
    const foreign = run("2026-05-01T10:00:00Z", "Succeeded", { owner: ownerRef("someone-else") });
    const plan = planSchedule(scheduleOf(), [foreign], now);
    expect(plan.create).to.equal(undefined);
    expect(plan.delete, "never prunes what it does not control").to.deep.equal([]);
    expect(plan.status.missedRuns).to.equal(1);
    expect(plan.events.map((e) => e.reason)).to.deep.equal(["NameConflict"]);
  });

  it("keeps the condition's lastTransitionTime while its status does not change", () => {
    const first = planSchedule(scheduleOf(), [], now);
    const later = new Date("2026-05-01T10:30:00Z");
    const second = planSchedule(
      scheduleOf({}, first.status),
      [run("2026-05-01T10:00:00Z", "Frozen")],
      later,
    );
    expect(condition(second, "Ready").lastTransitionTime).to.equal(now.toISOString());
  });
});

describe("schedule plan: concurrency", () => {
  const now = new Date("2026-05-01T11:00:00Z");
  const status = {
    lastConsideredTime: "2026-05-01T10:00:00.000Z",
    lastScheduleTime: "2026-05-01T10:00:00.000Z",
  };
  const running = run("2026-05-01T10:00:00Z", "DisksSnapshotted");

  it("Forbid (the default): skips the run while the previous one is in progress, and counts it", () => {
    const plan = planSchedule(scheduleOf({}, status), [running], now);
    expect(plan.create).to.equal(undefined);
    expect(plan.status.skippedRuns).to.equal(1);
    expect(plan.status.lastScheduleTime).to.equal("2026-05-01T10:00:00.000Z");
    expect(plan.status.lastConsideredTime, "the skipped instant is not run later").to.equal(
      "2026-05-01T11:00:00.000Z",
    );
    expect(plan.events.map((e) => e.reason)).to.deep.equal(["RunSkipped"]);
  });

  it("Allow: creates the run although the previous one is in progress", () => {
    const plan = planSchedule(scheduleOf({ concurrencyPolicy: "Allow" }, status), [running], now);
    expect(plan.create?.metadata.name).to.equal("db-01-202605011100");
  });

  it("a previous run being deleted does not block the next", () => {
    const deleting = run("2026-05-01T10:00:00Z", "Frozen", { deleting: true });
    expect(planSchedule(scheduleOf({}, status), [deleting], now).create).to.not.equal(undefined);
  });
});

describe("schedule plan: invalid spec, suspend, startingDeadline", () => {
  const now = new Date("2026-05-01T12:20:00Z");
  const status = {
    lastConsideredTime: "2026-05-01T09:00:00.000Z",
    nextScheduleTime: "2026-05-01T10:00:00.000Z",
  };
  const old = [run("2026-04-01T09:00:00Z", "Succeeded"), run("2026-04-02T09:00:00Z", "Succeeded")];

  for (const [label, spec, field] of [
    ["a schedule that never fires", { schedule: "0 0 30 2 *" }, "spec.schedule"],
    ["a time zone this runtime does not know", { timeZone: "Mars/Olympus" }, "spec.timeZone"],
    [
      "a startingDeadline that is not a duration",
      { startingDeadline: "soon" },
      "spec.startingDeadline",
    ],
  ] as const) {
    it(`${label}: Stalled naming ${field}; creates, prunes and requeues nothing`, () => {
      const plan = planSchedule(
        scheduleOf({ ...spec, retention: { keepLast: 1 } }, status),
        old,
        now,
      );
      expect(plan.create).to.equal(undefined);
      expect(plan.delete).to.deep.equal([]);
      expect(plan.requeueAfterMs).to.equal(undefined);
      expect(plan.status.nextScheduleTime).to.equal(undefined);
      expect(condition(plan, "Stalled")).to.deep.include({ status: "True", reason: "InvalidSpec" });
      expect(condition(plan, "Stalled").message).to.include(field);
      expect(condition(plan, "Ready").status).to.equal("False");
    });
  }

  it("suspended: runs nothing, Ready says Suspended, no next time, no timer", () => {
    const plan = planSchedule(scheduleOf({ suspend: true }, status), [], now);
    expect(plan.create).to.equal(undefined);
    expect(plan.requeueAfterMs).to.equal(undefined);
    expect(plan.status.nextScheduleTime).to.equal(undefined);
    expect(plan.status.lastConsideredTime).to.equal("2026-05-01T09:00:00.000Z");
    expect(condition(plan, "Ready")).to.deep.include({ status: "True", reason: "Suspended" });
  });

  it("after downtime, a run older than startingDeadline is skipped and counted as missed", () => {
    const plan = planSchedule(scheduleOf({ startingDeadline: "10m" }, status), [], now);
    expect(plan.create).to.equal(undefined);
    expect(plan.status.missedRuns).to.equal(3);
    expect(plan.status.lastConsideredTime).to.equal("2026-05-01T12:00:00.000Z");
    expect(plan.events.map((e) => e.reason)).to.deep.equal(["RunsMissed"]);
    expect(plan.events[0]!.message).to.include("startingDeadline 10m");
  });

  it("after downtime without startingDeadline, one late run and the rest counted missed", () => {
    const plan = planSchedule(scheduleOf({}, { ...status, missedRuns: 5 }), [], now);
    expect(plan.create?.metadata.name).to.equal("db-01-202605011200");
    expect(plan.status.missedRuns).to.equal(7);
  });
});

describe("schedule plan: retention and status of its runs", () => {
  const now = new Date("2026-05-01T12:30:00Z");
  const status = {
    lastConsideredTime: "2026-05-01T12:00:00.000Z",
    lastSuccessfulTime: "2026-05-01T11:00:05.000Z",
  };

  it("prunes its own runs outside retention, never in-progress, foreign or already deleting ones", () => {
    const runs = [
      run("2026-05-01T12:00:00Z", "Frozen"),
      run("2026-05-01T11:00:00Z", "Succeeded", { completed: "2026-05-01T11:00:05Z" }),
      run("2026-05-01T10:00:00Z", "Succeeded"),
      run("2026-05-01T09:00:00Z", "Succeeded", { deleting: true }),
      run("2026-05-01T08:00:00Z", "Succeeded", { owner: null, name: "hand-made" }),
      run("2026-05-01T07:00:00Z", "Failed"),
    ];
    const plan = planSchedule(
      scheduleOf({ retention: { keepLast: 1, keepFailed: 0 } }, status),
      runs,
      now,
    );
    expect(plan.delete).to.deep.equal(["db-01-202605011000", "db-01-202605010700"]);
    expect(plan.status.snapshots).to.deep.equal({ inProgress: 1, succeeded: 2, failed: 1 });
    expect(plan.events.map((e) => e.reason)).to.deep.equal(["SnapshotsPruned"]);
  });

  it("Ready is False while the newest finished run failed, with its reason", () => {
    const runs = [run("2026-05-01T12:00:00Z", "Failed"), run("2026-05-01T11:00:00Z", "Succeeded")];
    const plan = planSchedule(scheduleOf({}, status), runs, now);
    expect(condition(plan, "Ready")).to.deep.include({ status: "False", reason: "LastRunFailed" });
    expect(condition(plan, "Ready").message)
      .to.include("db-01-202605011200")
      .and.include("GuestAgentUnavailable");
    expect(condition(plan, "Stalled").status, "the next run may well succeed").to.equal("False");
  });

  it("lastSuccessfulTime follows the newest completion and survives that run being pruned", () => {
    const done = run("2026-05-01T12:00:00Z", "Succeeded", { completed: "2026-05-01T12:00:04Z" });
    const first = planSchedule(scheduleOf({}, status), [done], now);
    expect(first.status.lastSuccessfulTime).to.equal("2026-05-01T12:00:04.000Z");
    const pruned = planSchedule(scheduleOf({}, first.status), [], now);
    expect(pruned.status.lastSuccessfulTime).to.equal("2026-05-01T12:00:04.000Z");
  });
});

describe("schedule plan: a month of an hourly schedule, fed back as the reconcile loop would", () => {
  it("creates each run once, never bursts after a 5-hour outage, and keeps exactly what retention says", function () {
    this.timeout(20_000); // ~1,500 passes: 1.5 s measured on this shared machine at load average 17
    let schedule = scheduleOf({
      timeZone: "Europe/Berlin",
      retention: { keepHourly: 24, keepDaily: 7, keepWeekly: 4 },
    });
    const cluster = new Map<string, VMSnapshot>();
    const created: string[] = [];
    const outage = [Date.parse("2026-05-10T03:30:00Z"), Date.parse("2026-05-10T08:30:00Z")];
    let wake = Date.parse("2026-05-01T09:10:00Z");
    const end = Date.parse("2026-06-01T00:00:00Z");
    let passes = 0;
    while (wake < end) {
      const now = new Date(wake);
      // a run in progress finishes 30 s after it was created
      for (const s of cluster.values()) {
        const at = Date.parse(s.metadata.annotations![SCHEDULED_AT_ANNOTATION]!);
        if (!s.status && wake - at >= 30_000) {
          s.status = { phase: "Succeeded", completionTime: new Date(at + 30_000).toISOString() };
        }
      }
      const plan = planSchedule(schedule, [...cluster.values()], now);
      passes++;
      if (plan.create) {
        expect(cluster.has(plan.create.metadata.name!), "created twice").to.equal(false);
        cluster.set(plan.create.metadata.name!, plan.create);
        created.push(plan.create.metadata.name!);
      }
      for (const name of plan.delete) cluster.delete(name);
      schedule = { ...schedule, status: plan.status };
      // the loop wakes at the requeue time, or when a run changes (here: 30 s after creation)
      let next = wake + (plan.requeueAfterMs ?? 3_600_000);
      if (plan.create) next = Math.min(next, wake + 30_000);
      if (next > outage[0]! && next < outage[1]!) next = outage[1]!;
      wake = next;
    }
    // 09:10 on 1 May to 00:00 on 1 June is 734 instants; 5 fell in the outage: 4 missed, 1 run late
    expect(created).to.have.length(734 - 4);
    expect(schedule.status!.missedRuns).to.equal(4);
    expect(new Set(created).size).to.equal(created.length);
    expect(created).to.include("db-01-202605100800"); // the newest instant of the outage, late
    expect(created).to.not.include("db-01-202605100700");
    // 24 hours to 01:00 on 1 June (Berlin); 7 days before 31 May; weeks: those of 1 June, 25 and 18
    // May are covered, and only 3 older weeks hold snapshots (history starts on 1 May)
    expect(cluster.size).to.equal(24 + 7 + 3);
    expect(passes).to.be.below(2 * created.length + 10);
  });
});
