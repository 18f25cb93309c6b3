// The schedule's sync function in-process, with fake API ports that record every call: what it
// writes, creates and deletes, in which order, and what it does when the API answers
// AlreadyExists or the schedule is being deleted. The decisions themselves are plan.test.ts's.
import { expect } from "chai";
import type { V1OwnerReference } from "@kubernetes/client-node";
import {
  SCHEDULE_FINALIZER,
  SCHEDULE_LABEL,
  SCHEDULED_AT_ANNOTATION,
  type VMSnapshotSchedule,
  type VMSnapshotScheduleSpec,
} from "../../../src/api/schedule-types.ts";
import type { VMSnapshot } from "../../../src/api/types.ts";
import { AlreadyExistsError } from "../../../src/kube/object-client.ts";
import { createMetrics } from "../../../src/metrics/index.ts";
import { ScheduleReconciler } from "../../../src/schedule/reconciler.ts";
import { parseExposition, valueOf } from "../../support/exposition.ts";

const UID = "5c2d-schedule-uid";
const KEY = "tenant-a/db-01";
const CREATED = "2026-05-01T09:10:00Z";

function scheduleOf(
  spec: Partial<VMSnapshotScheduleSpec> = {},
  metadata: Partial<VMSnapshotSchedule["metadata"]> = {},
): VMSnapshotSchedule {
  return {
    apiVersion: "vmsnap.io/v1alpha1",
    kind: "VMSnapshotSchedule",
    metadata: {
      name: "db-01",
      namespace: "tenant-a",
      uid: UID,
      resourceVersion: "1",
      creationTimestamp: new Date(CREATED),
      finalizers: [SCHEDULE_FINALIZER],
      ...metadata,
    },
    spec: {
      schedule: "0 * * * *",
      template: { source: { domain: "db-01", node: "hv-02" } },
      ...spec,
    },
  };
}

const ownedBy = (uid: string): V1OwnerReference => ({
  apiVersion: "vmsnap.io/v1alpha1",
  kind: "VMSnapshotSchedule",
  name: "db-01",
  uid,
  controller: true,
});

function runOf(name: string, at: string, owner = UID, extra: Partial<VMSnapshot> = {}): VMSnapshot {
  return {
    apiVersion: "vmsnap.io/v1alpha1",
    kind: "VMSnapshot",
    metadata: {
      name,
      namespace: "tenant-a",
      labels: { [SCHEDULE_LABEL]: "db-01" },
      annotations: { [SCHEDULED_AT_ANNOTATION]: at },
      ownerReferences: [ownedBy(owner)],
      ...extra.metadata,
    },
    spec: { source: { domain: "db-01", node: "hv-02" } },
    ...(extra.status && { status: extra.status }),
  };
}

/** The fake API: a journal of calls, objects that exist without being cached, a fixed clock. */
function harness(schedule: VMSnapshotSchedule, cached: VMSnapshot[], now: string) {
  const journal: string[] = [];
  const uncached = new Map<string, VMSnapshot>();
  const statuses: Array<Record<string, unknown>> = [];
  const events: string[] = [];
  const metrics = createMetrics(undefined, { defaultMetrics: false });
  const cache = { schedule: schedule as VMSnapshotSchedule | undefined };
  const reconciler = new ScheduleReconciler({
    read: (key) => (key === KEY ? cache.schedule : undefined),
    runs: (namespace, label) =>
      cached.filter(
        (r) => r.metadata.namespace === namespace && r.metadata.labels?.[SCHEDULE_LABEL] === label,
      ),
    schedules: {
      get: () => Promise.resolve(schedule),
      patchStatus: (obj, status) => {
        journal.push("patchStatus");
        statuses.push(status as Record<string, unknown>);
        return Promise.resolve(obj);
      },
      setFinalizers: (obj, finalizers) => {
        journal.push(`setFinalizers ${JSON.stringify(finalizers)}`);
        return Promise.resolve({
          ...obj,
          metadata: { ...obj.metadata, finalizers, resourceVersion: "2" },
        });
      },
    },
    snapshots: {
      create: (obj) => {
        journal.push(`create ${obj.metadata.name}`);
        if (uncached.has(obj.metadata.name!)) {
          return Promise.reject(new AlreadyExistsError(`${obj.metadata.name} already exists`));
        }
        return Promise.resolve(obj);
      },
      delete: (_namespace, name) => {
        journal.push(`delete ${name}`);
        return Promise.resolve();
      },
      get: (_namespace, name) => {
        journal.push(`get ${name}`);
        return Promise.resolve(uncached.get(name));
      },
    },
    events: { record: (_o, _type, reason) => events.push(reason) },
    metrics,
    now: () => new Date(now),
  });
  const metric = async (name: string, labels: Record<string, string> = {}) =>
    valueOf(parseExposition(await metrics.registry.metrics()), name, labels);
  /** The values of every `vmsnap_schedule_*` series of db-01, by name. */
  const gauges = async () => {
    const samples = parseExposition(await metrics.registry.metrics()).samples.filter(
      (x) => x.labels.namespace === "tenant-a" && x.labels.schedule === "db-01",
    );
    return Object.fromEntries(samples.map((x) => [x.name, x.value]));
  };
  return { reconciler, journal, uncached, statuses, events, metric, gauges, cache };
}

describe("schedule reconciler", () => {
  it("1 - a new schedule: adds its finalizer first, then only writes status and sleeps until the first instant", async () => {
    const h = harness(scheduleOf({}, { finalizers: [] }), [], "2026-05-01T09:30:00Z");
    const result = await h.reconciler.reconcile(KEY);
    expect(h.journal).to.deep.equal([`setFinalizers ["${SCHEDULE_FINALIZER}"]`, "patchStatus"]);
    expect(result.requeueAfterMs).to.equal(30 * 60_000);
    expect(h.statuses[0]).to.include({ nextScheduleTime: "2026-05-01T10:00:00.000Z" });
  });

  it("2 - at an instant: creates the run named after it, owned by the schedule, then records it", async () => {
    const h = harness(scheduleOf(), [], "2026-05-01T10:00:00.250Z");
    await h.reconciler.reconcile(KEY);
    expect(h.journal).to.deep.equal(["create db-01-202605011000", "patchStatus"]);
    expect(h.statuses[0]).to.include({ lastScheduleTime: "2026-05-01T10:00:00.000Z" });
    expect(h.events).to.deep.equal(["SnapshotCreated"]);
    expect(await h.metric("vmsnap_schedule_runs_total", { result: "created" })).to.equal(1);
    expect(await h.metric("vmsnap_schedule_run_lateness_seconds_sum")).to.be.closeTo(0.25, 1e-9);
  });

  it("3 - AlreadyExists for its own run (created by a previous agent, not cached yet): records it, creates nothing more", async () => {
    const h = harness(scheduleOf(), [], "2026-05-01T10:00:05Z");
    h.uncached.set("db-01-202605011000", runOf("db-01-202605011000", "2026-05-01T10:00:00.000Z"));
    await h.reconciler.reconcile(KEY);
    expect(h.journal).to.deep.equal([
      "create db-01-202605011000",
      "get db-01-202605011000",
      "patchStatus",
    ]);
    expect(h.statuses[0]).to.include({ lastScheduleTime: "2026-05-01T10:00:00.000Z" });
    expect(h.statuses[0]).not.to.have.property("missedRuns");
    expect(h.events).to.deep.equal([]);
    expect(await h.metric("vmsnap_schedule_runs_total", { result: "created" })).to.equal(0);
  });

  it("4 - AlreadyExists for someone else's VMSnapshot of that name: NameConflict, counted as missed and as a conflict", async () => {
    const h = harness(scheduleOf(), [], "2026-05-01T10:00:05Z");
    h.uncached.set(
      "db-01-202605011000",
      runOf("db-01-202605011000", "2026-05-01T10:00:00.000Z", "someone-else"),
    );
    await h.reconciler.reconcile(KEY);
    expect(h.statuses[0]).to.include({ missedRuns: 1 });
    expect(h.statuses[0]).not.to.have.property("lastScheduleTime");
    expect(h.events).to.deep.equal(["NameConflict"]);
    expect(await h.metric("vmsnap_schedule_runs_total", { result: "conflict" })).to.equal(1);
    expect(await h.metric("vmsnap_schedule_runs_total", { result: "missed" })).to.equal(0);
  });

  it("5 - retention: deletes the runs the policy prunes and reports what it retains", async () => {
    const done = { phase: "Succeeded" as const };
    const runs = ["07", "08", "09"].map((hh) =>
      runOf(`db-01-20260501${hh}00`, `2026-05-01T${hh}:00:00.000Z`, UID, { status: done }),
    );
    const h = harness(scheduleOf({ retention: { keepLast: 2 } }), runs, "2026-05-01T09:30:00Z");
    await h.reconciler.reconcile(KEY);
    expect(h.journal).to.deep.equal(["delete db-01-202605010700", "patchStatus"]);
    expect(
      await h.metric("vmsnap_schedule_snapshots_retained", {
        namespace: "tenant-a",
        schedule: "db-01",
      }),
    ).to.equal(2);
  });

  it("6 - deleted schedule: deletes its runs and keeps its finalizer until they are gone", async () => {
    const deleting = scheduleOf({}, { deletionTimestamp: new Date("2026-05-01T09:31:00Z") });
    const runs = [
      runOf("db-01-202605010900", "2026-05-01T09:00:00.000Z"),
      runOf("db-01-202605010800", "2026-05-01T08:00:00.000Z", UID, {
        metadata: { name: "x", deletionTimestamp: new Date("2026-05-01T09:31:00Z") },
      } as Partial<VMSnapshot>),
      runOf("not-ours", "2026-05-01T09:00:00.000Z", "someone-else"),
    ];
    const h = harness(deleting, runs, "2026-05-01T09:31:01Z");
    const result = await h.reconciler.reconcile(KEY);
    expect(h.journal, "one delete: the other is going already").to.deep.equal([
      "delete db-01-202605010900",
    ]);
    expect(result.requeueAfterMs).to.be.a("number");

    const gone = harness(deleting, [runs[2]!], "2026-05-01T09:31:05Z");
    expect(await gone.reconciler.reconcile(KEY)).to.deep.equal({});
    expect(gone.journal).to.deep.equal(["setFinalizers []"]);
  });

  it("7 - deleted with propagationPolicy=Orphan: keeps the runs, lets the schedule go", async () => {
    const orphaning = scheduleOf(
      {},
      {
        deletionTimestamp: new Date("2026-05-01T09:31:00Z"),
        finalizers: ["orphan", SCHEDULE_FINALIZER],
      },
    );
    const h = harness(
      orphaning,
      [runOf("db-01-202605010900", "2026-05-01T09:00:00.000Z")],
      "2026-05-01T09:31:01Z",
    );
    await h.reconciler.reconcile(KEY);
    expect(h.journal).to.deep.equal(['setFinalizers ["orphan"]']);
  });

  it("8 - an invalid spec the API server let through: Stalled, nothing created, no requeue", async () => {
    const h = harness(scheduleOf({ schedule: "61 * * * *" }), [], "2026-05-01T10:00:00Z");
    expect(await h.reconciler.reconcile(KEY)).to.deep.equal({});
    expect(h.journal).to.deep.equal(["patchStatus"]);
    const stalled = (
      h.statuses[0]!.conditions as Array<{ type: string; status: string; message: string }>
    ).find((c) => c.type === "Stalled");
    expect(stalled?.status).to.equal("True");
    expect(stalled?.message).to.include("spec.schedule");
    expect(h.events).to.deep.equal(["InvalidSpec"]);
  });

  it("9 - a schedule gone from the cache: nothing to do", async () => {
    const h = harness(scheduleOf(), [], "2026-05-01T10:00:00Z");
    expect(await h.reconciler.reconcile("tenant-a/other")).to.deep.equal({});
    expect(h.journal).to.deep.equal([]);
  });

  describe("10 - the series the missed-success alert reads", () => {
    const done = (completionTime: string) => ({
      status: { phase: "Succeeded" as const, completionTime },
    });

    it("10-1 - after a pass: last success, creation, period and suspend of the schedule", async () => {
      const runs = [
        runOf("db-01-202605010900", "2026-05-01T09:00:00.000Z", UID, done("2026-05-01T09:00:04Z")),
        runOf("db-01-202605011000", "2026-05-01T10:00:00.000Z", UID, done("2026-05-01T10:00:03Z")),
      ];
      const h = harness(scheduleOf({ schedule: "*/30 * * * *" }), runs, "2026-05-01T10:20:00Z");
      await h.reconciler.reconcile(KEY);
      expect(await h.gauges()).to.deep.equal({
        vmsnap_schedule_snapshots_retained: 2,
        vmsnap_schedule_last_success_timestamp_seconds: Date.parse("2026-05-01T10:00:03Z") / 1000,
        vmsnap_schedule_created_timestamp_seconds: Date.parse(CREATED) / 1000,
        vmsnap_schedule_interval_seconds: 1800,
        vmsnap_schedule_suspended: 0,
      });
    });

    it("10-2 - never succeeded and suspended: no last-success series, suspended 1", async () => {
      const h = harness(scheduleOf({ suspend: true }), [], "2026-05-01T10:20:00Z");
      await h.reconciler.reconcile(KEY);
      const gauges = await h.gauges();
      expect(gauges).not.to.have.property("vmsnap_schedule_last_success_timestamp_seconds");
      expect(gauges).to.include({
        vmsnap_schedule_created_timestamp_seconds: Date.parse(CREATED) / 1000,
        vmsnap_schedule_interval_seconds: 3600,
        vmsnap_schedule_suspended: 1,
      });
    });

    it("10-3 - an invalid spec: no period, so the alert cannot compare (Stalled says why)", async () => {
      const h = harness(scheduleOf({ schedule: "61 * * * *" }), [], "2026-05-01T10:20:00Z");
      await h.reconciler.reconcile(KEY);
      expect(await h.gauges()).not.to.have.property("vmsnap_schedule_interval_seconds");
    });

    const leaving: Array<[string, Partial<VMSnapshotSchedule["metadata"]> | undefined]> = [
      ["being deleted (with the agent's finalizer)", { deletionTimestamp: new Date() }],
      [
        "being deleted with propagationPolicy=Orphan",
        { deletionTimestamp: new Date(), finalizers: ["orphan"] },
      ],
      ["gone from the cache (deleted, or moved to another node)", undefined],
    ];
    for (const [label, leave] of leaving) {
      it(`10-4 - ${label}: every series of the schedule goes`, async () => {
        const h = harness(scheduleOf(), [], "2026-05-01T10:20:00Z");
        await h.reconciler.reconcile(KEY);
        expect(Object.keys(await h.gauges())).to.have.length(4);
        h.cache.schedule = leave && scheduleOf({}, leave);
        await h.reconciler.reconcile(KEY);
        expect(await h.gauges()).to.deep.equal({});
      });
    }
  });
});
