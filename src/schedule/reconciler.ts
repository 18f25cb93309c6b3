// The sync function of one VMSnapshotSchedule: the I/O around planSchedule (plan.ts decides,
// this acts). It runs on the Controller's workers (src/controller/controller.ts), fed by the
// agent's informer of this node's schedules and woken by changes of their runs (run-owners.ts).
//
// Invariants kept:
// - A run is created at most once: its name is a function of the schedule and the instant, and
//   AlreadyExists on create means an earlier pass (or a previous agent) created it. Every write of
//   status carries the resourceVersion read, so a pass working from a stale cache fails with a
//   conflict and is retried instead of moving the cursor back.
// - Deleting a schedule deletes its runs before the schedule goes (the finalizer), so it works
//   without the garbage collector, which a cluster may not run (the test control plane does not)
//   and which deletes dependents only after the owner is gone. A delete with
//   propagationPolicy=Orphan (the API server then adds the `orphan` finalizer) keeps the runs.
// - An invalid spec is recorded (Stalled) and not retried: only a change of spec wakes it.
import {
  SCHEDULE_FINALIZER,
  SCHEDULED_AT_ANNOTATION,
  type VMSnapshotSchedule,
  type VMSnapshotScheduleStatus,
} from "../api/schedule-types.ts";
import type { VMSnapshot } from "../api/types.ts";
import type { KeyReconciler } from "../controller/controller.ts";
import {
  AlreadyExistsError,
  type ObjectClient,
  type ReconcileClient,
} from "../kube/object-client.ts";
import type { EventSink } from "../kube/recorder.ts";
import { objectKey } from "../kube/resource.ts";
import type { ScheduleMetrics } from "../metrics/index.ts";
import { scheduleLabelValue } from "./names.ts";
import { isControlledBy, planSchedule, type ScheduleEvent, type SchedulePlan } from "./plan.ts";
import { statusMergePatch } from "./status-patch.ts";

/** Set by the API server on a delete with propagationPolicy=Orphan. */
const ORPHAN_FINALIZER = "orphan";
/** While a deleted schedule waits for its runs to go: a fallback to the wake-up by run-owners. */
const FINALIZE_POLL_MS = 2_000;
/** The `action` of the Events a schedule records. */
const EVENT_ACTION = "Schedule";

export interface ScheduleReconcilerOptions {
  /** The schedule as the informer caches it (frozen), by `namespace/name`. */
  readonly read: (key: string) => VMSnapshotSchedule | undefined;
  /** The cached VMSnapshots of `namespace` carrying `vmsnap.io/schedule=<labelValue>`. */
  readonly runs: (namespace: string, labelValue: string) => VMSnapshot[];
  readonly schedules: ReconcileClient<VMSnapshotSchedule>;
  readonly snapshots: Pick<ObjectClient<VMSnapshot>, "create" | "delete" | "get">;
  readonly events: Pick<EventSink, "record">;
  readonly metrics?: ScheduleMetrics;
  /** The wall clock: schedules are wall-clock times. */
  readonly now?: () => Date;
  readonly log?: (message: string, fields: Record<string, unknown>) => void;
}

export class ScheduleReconciler implements KeyReconciler {
  private readonly now: () => Date;

  constructor(private readonly o: ScheduleReconcilerOptions) {
    this.now = o.now ?? (() => new Date());
  }

  async reconcile(key: string): Promise<{ requeueAfterMs?: number }> {
    let schedule = this.o.read(key);
    if (!schedule || schedule.metadata.deletionTimestamp) {
      // Gone, going, or moved to another node's agent: its series go, so that nothing alerts
      // about a schedule no one runs here (a deleted schedule cannot miss a success).
      this.o.metrics?.scheduleGauges.remove(labelsOfKey(key));
    }
    if (!schedule) return {};
    const finalizers = schedule.metadata.finalizers ?? [];
    if (schedule.metadata.deletionTimestamp) {
      return finalizers.includes(SCHEDULE_FINALIZER) ? this.finalize(schedule) : {};
    }
    if (!finalizers.includes(SCHEDULE_FINALIZER)) {
      // Before the first run exists, so no run can outlive its schedule.
      schedule = await this.o.schedules.setFinalizers(schedule, [
        ...finalizers,
        SCHEDULE_FINALIZER,
      ]);
    }

    const now = this.now();
    const runs = this.runsOf(schedule);
    let plan = planSchedule(schedule, runs, now);
    if (plan.create) plan = await this.create(schedule, plan, runs, now);
    for (const name of plan.delete)
      await this.o.snapshots.delete(schedule.metadata.namespace!, name);

    const patch = statusMergePatch(schedule.status, plan.status);
    if (patch) await this.o.schedules.patchStatus(schedule, patch as VMSnapshotScheduleStatus);
    for (const event of plan.events) this.record(schedule, event);
    this.report(schedule, plan);
    return plan.requeueAfterMs === undefined ? {} : { requeueAfterMs: plan.requeueAfterMs };
  }

  /**
   * Creates the due run. When one of that name exists already (the cache had not shown it yet),
   * the plan is made again with it in view, so plan.ts alone decides what it means: this
   * schedule's run (created by an earlier pass or agent: recorded, not created again) or
   * someone else's object (a name conflict, counted as missed).
   */
  private async create(
    schedule: VMSnapshotSchedule,
    plan: SchedulePlan,
    runs: readonly VMSnapshot[],
    now: Date,
  ): Promise<SchedulePlan> {
    const run = plan.create!;
    try {
      await this.o.snapshots.create(run);
    } catch (err) {
      if (!(err instanceof AlreadyExistsError)) throw err;
      const existing = await this.o.snapshots.get(schedule.metadata.namespace!, run.metadata.name!);
      // Gone again already: retry the pass rather than guess.
      if (!existing) throw err;
      return planSchedule(schedule, [...runs, existing], now);
    }
    const instant = Date.parse(run.metadata.annotations![SCHEDULED_AT_ANNOTATION]!);
    const latenessMs = this.now().getTime() - instant;
    // Counted here, when it happened: a pass that fails later (a status conflict) is retried,
    // and the retry finds the run and does not create (or count) it again.
    this.o.metrics?.scheduleRunsTotal.inc({ result: "created" });
    this.o.metrics?.scheduleRunLatenessSeconds.observe(latenessMs / 1000);
    this.o.log?.("created a scheduled run", {
      schedule: objectKey(schedule),
      run: run.metadata.name,
      latenessMs,
    });
    return plan;
  }

  /** Deletes the schedule's runs, and lets the schedule go once none is left. */
  private async finalize(schedule: VMSnapshotSchedule): Promise<{ requeueAfterMs?: number }> {
    const finalizers = schedule.metadata.finalizers ?? [];
    if (!finalizers.includes(ORPHAN_FINALIZER)) {
      const runs = this.runsOf(schedule).filter((run) => isControlledBy(run, schedule));
      for (const run of runs.filter((r) => !r.metadata.deletionTimestamp)) {
        await this.o.snapshots.delete(run.metadata.namespace!, run.metadata.name!);
      }
      // Their own finalizers remove their artefacts; the schedule waits until they are gone.
      if (runs.length > 0) return { requeueAfterMs: FINALIZE_POLL_MS };
    }
    await this.o.schedules.setFinalizers(
      schedule,
      finalizers.filter((f) => f !== SCHEDULE_FINALIZER),
    );
    return {};
  }

  private runsOf(schedule: VMSnapshotSchedule): VMSnapshot[] {
    const { namespace, name } = schedule.metadata;
    return this.o.runs(namespace!, scheduleLabelValue(name!));
  }

  private record(schedule: VMSnapshotSchedule, event: ScheduleEvent): void {
    this.o.events.record(schedule, event.type, event.reason, EVENT_ACTION, event.message);
  }

  /**
   * Counts what the pass decided and shows the schedule as it now stands, once it is recorded (a
   * pass that threw counts nothing).
   */
  private report(schedule: VMSnapshotSchedule, plan: SchedulePlan): void {
    const metrics = this.o.metrics;
    if (!metrics) return;
    const before = schedule.status ?? {};
    const missed = (plan.status.missedRuns ?? 0) - (before.missedRuns ?? 0);
    const skipped = (plan.status.skippedRuns ?? 0) - (before.skippedRuns ?? 0);
    const conflicts = plan.events.filter((e) => e.reason === "NameConflict").length;
    if (skipped > 0) metrics.scheduleRunsTotal.inc({ result: "skipped" }, skipped);
    // A conflict is also counted in missedRuns by the plan; here it is told apart.
    if (missed - conflicts > 0)
      metrics.scheduleRunsTotal.inc({ result: "missed" }, missed - conflicts);
    if (conflicts > 0) metrics.scheduleRunsTotal.inc({ result: "conflict" }, conflicts);
    const counts = plan.status.snapshots ?? { inProgress: 0, succeeded: 0, failed: 0 };
    const lastSuccess = plan.status.lastSuccessfulTime;
    metrics.scheduleGauges.set(labelsOfKey(objectKey(schedule)), {
      retained: counts.inProgress + counts.succeeded + counts.failed - plan.delete.length,
      lastSuccess: lastSuccess === undefined ? undefined : new Date(lastSuccess),
      created: new Date(schedule.metadata.creationTimestamp ?? this.now()),
      intervalSeconds: plan.periodMs === undefined ? undefined : plan.periodMs / 1000,
      suspended: schedule.spec.suspend === true,
    });
  }
}

/** The metric labels of the schedule at `namespace/name`. */
function labelsOfKey(key: string): { namespace: string; schedule: string } {
  const slash = key.indexOf("/");
  return { namespace: key.slice(0, slash), schedule: key.slice(slash + 1) };
}
