// A schedule's whole decision, pure: from the schedule, the VMSnapshots it owns and the clock, what
// to create, what to delete, the status to write and when to look again. The reconcile loop does
// the I/O; nothing here reads a clock or the API.
//
// Invariants kept:
// - At most one run per pass, for the newest instant that passed: never a burst after an outage.
// - A run's name is a function of the schedule and its instant, so a run is never created twice
//   (a repeated create gets AlreadyExists; a run already listed is recorded, not re-created).
// - Every instant is decided once (run, skipped, or missed) and counted once:
//   status.lastConsideredTime is the cursor.
// - Runs still in progress and runs being deleted are never pruned; an invalid spec creates and
//   prunes nothing.
import { parseDuration } from "../api/duration.ts";
import {
  SCHEDULE_KIND,
  SCHEDULE_LABEL,
  SCHEDULED_AT_ANNOTATION,
  type ScheduleCondition,
  type ScheduleSnapshotCounts,
  type VMSnapshotSchedule,
  type VMSnapshotScheduleStatus,
} from "../api/schedule-types.ts";
import { API_VERSION, KIND, type VMSnapshot } from "../api/types.ts";
import { DEFAULT_TIME_ZONE, parseSchedule } from "./cron.ts";
import { runName, scheduleLabelValue } from "./names.ts";
import { applyRetention, type RetentionCandidate, type RetentionPhase } from "./retention.ts";
import { decideRun, periodAt } from "./runs.ts";

export interface ScheduleEvent {
  type: "Normal" | "Warning";
  reason:
    | "SnapshotCreated"
    | "RunSkipped"
    | "RunsMissed"
    | "SnapshotsPruned"
    | "InvalidSpec"
    | "NameConflict";
  message: string;
}

export interface SchedulePlan {
  /** The run to create now, if one is due. */
  create?: VMSnapshot;
  /** Names of owned VMSnapshots to delete (retention). */
  delete: string[];
  /** The whole status to write (fields absent here are to be removed). */
  status: VMSnapshotScheduleStatus;
  /** Look again after this long; undefined: only when the schedule or one of its runs changes. */
  requeueAfterMs?: number;
  /**
   * The period the schedule is in (runs.ts periodAt), which the "no success within two
   * periods" alert measures by; undefined for an invalid spec.
   */
  periodMs?: number;
  events: ScheduleEvent[];
}

/**
 * Plans one reconcile of a schedule.
 * @param schedule the schedule as read from the API (metadata.uid and creationTimestamp set)
 * @param snapshots VMSnapshots of its namespace carrying its label; ones it does not control are
 *   ignored except that their names are never reused
 * @param now the reconcile's clock
 */
export function planSchedule(
  schedule: VMSnapshotSchedule,
  snapshots: readonly VMSnapshot[],
  now: Date,
): SchedulePlan {
  const { spec } = schedule;
  const previous = schedule.status ?? {};
  const owned = snapshots.filter((s) => isControlledBy(s, schedule));
  const live = owned.filter((s) => !s.metadata.deletionTimestamp);
  const counts = countByPhase(live);
  const status: VMSnapshotScheduleStatus = {
    ...carried(previous),
    ...defined("lastSuccessfulTime", lastSuccess(owned, previous.lastSuccessfulTime)),
    snapshots: counts,
  };
  const generation = schedule.metadata.generation;
  if (generation !== undefined) status.observedGeneration = generation;

  const timeZone = spec.timeZone ?? DEFAULT_TIME_ZONE;
  const parsed = parseSchedule(spec.schedule, timeZone);
  const invalid = parsed.ok
    ? deadlineProblem(spec.startingDeadline)
    : `${parsed.problem.field}: ${parsed.problem.message}`;
  if (!parsed.ok || invalid !== undefined) {
    const message = invalid ?? "invalid spec";
    delete status.nextScheduleTime;
    status.conditions = conditions(previous, now, generation, {
      ready: ["False", "InvalidSpec", message],
      reconciling: ["False", "InvalidSpec", "waiting for the spec to be fixed"],
      stalled: ["True", "InvalidSpec", message],
    });
    return {
      delete: [],
      status,
      events: [{ type: "Warning", reason: "InvalidSpec", message }],
    };
  }

  const since = previous.lastConsideredTime ?? schedule.metadata.creationTimestamp ?? now;
  const decision = decideRun({
    schedule: parsed.schedule,
    since: new Date(since),
    ...(spec.startingDeadline !== undefined && {
      startingDeadlineMs: parseDuration(spec.startingDeadline),
    }),
    suspend: spec.suspend === true,
    now,
  });
  const events: ScheduleEvent[] = [];
  let create: VMSnapshot | undefined;

  if (decision.considered) status.lastConsideredTime = decision.considered.toISOString();
  if (decision.next) status.nextScheduleTime = decision.next.toISOString();
  else delete status.nextScheduleTime;
  const missed = decision.missed;
  if (missed > 0) {
    status.missedRuns = (previous.missedRuns ?? 0) + missed;
    const late = decision.tooLate
      ? `; the newest, ${decision.tooLate.toISOString()}, was past startingDeadline ${spec.startingDeadline}`
      : "";
    events.push({
      type: "Warning",
      reason: "RunsMissed",
      message: `${decision.missedAtLeast ? "at least " : ""}${missed} scheduled run(s) missed${late}`,
    });
  }

  if (decision.due) {
    const name = runName(schedule.metadata.name!, decision.due);
    const existing = snapshots.find((s) => s.metadata.name === name);
    const inProgress = live.filter((s) => phaseOf(s) === "InProgress");
    if (existing && isControlledBy(existing, schedule)) {
      // Created by an earlier pass whose status write was lost: record it, do not create again.
      status.lastScheduleTime = decision.due.toISOString();
    } else if (existing) {
      status.missedRuns = (status.missedRuns ?? 0) + 1;
      events.push({
        type: "Warning",
        reason: "NameConflict",
        message: `run ${decision.due.toISOString()} not created: a VMSnapshot named ${name} exists and is not this schedule's`,
      });
    } else if ((spec.concurrencyPolicy ?? "Forbid") === "Forbid" && inProgress.length > 0) {
      status.skippedRuns = (previous.skippedRuns ?? 0) + 1;
      events.push({
        type: "Normal",
        reason: "RunSkipped",
        message: `run ${decision.due.toISOString()} skipped: ${inProgress.map((s) => s.metadata.name).join(", ")} still in progress (concurrencyPolicy Forbid)`,
      });
    } else {
      create = runOf(schedule, name, decision.due);
      status.lastScheduleTime = decision.due.toISOString();
      counts.inProgress++;
      events.push({
        type: "Normal",
        reason: "SnapshotCreated",
        message: `created ${name} for ${decision.due.toISOString()}`,
      });
    }
  }

  const periodMs = periodAt(parsed.schedule, now);
  const retention = applyRetention(live.map(candidateOf), spec.retention ?? {}, timeZone);
  const toDelete = retention.prune.map((p) => p.name);
  if (toDelete.length > 0) {
    events.push({
      type: "Normal",
      reason: "SnapshotsPruned",
      message: `pruning ${toDelete.length}: ${retention.prune.map((p) => `${p.name} (${p.reason})`).join(", ")}`,
    });
  }

  status.conditions = conditions(previous, now, generation, {
    ready: readiness(live, decision.next, spec.suspend === true),
    reconciling:
      counts.inProgress > 0
        ? ["True", "RunInProgress", `${counts.inProgress} snapshot(s) in progress`]
        : ["False", "Idle", "no snapshot in progress"],
    stalled: ["False", "NotStalled", "no error"],
  });
  return {
    ...(create && { create }),
    delete: toDelete,
    status,
    ...(decision.requeueAfterMs !== undefined && { requeueAfterMs: decision.requeueAfterMs }),
    ...(periodMs !== undefined && { periodMs }),
    events,
  };
}

/** The label selector that finds a schedule's runs (then filter with isControlledBy). */
export function runsLabelSelector(schedule: VMSnapshotSchedule): string {
  return `${SCHEDULE_LABEL}=${scheduleLabelValue(schedule.metadata.name!)}`;
}

/** True when `snapshot` has an owner reference to `schedule` with controller=true. */
export function isControlledBy(snapshot: VMSnapshot, schedule: VMSnapshotSchedule): boolean {
  return (snapshot.metadata.ownerReferences ?? []).some(
    (ref) => ref.controller === true && ref.uid === schedule.metadata.uid,
  );
}

/** The VMSnapshot a schedule creates for its run at `instant`, named `name` (names.ts runName). */
export function runOf(schedule: VMSnapshotSchedule, name: string, instant: Date): VMSnapshot {
  const { metadata } = schedule;
  if (!metadata.uid) throw new Error(`schedule ${metadata.name} has no metadata.uid`);
  return {
    apiVersion: API_VERSION,
    kind: KIND,
    metadata: {
      name,
      ...(metadata.namespace !== undefined && { namespace: metadata.namespace }),
      labels: { [SCHEDULE_LABEL]: scheduleLabelValue(metadata.name!) },
      annotations: { [SCHEDULED_AT_ANNOTATION]: instant.toISOString() },
      ownerReferences: [
        {
          apiVersion: schedule.apiVersion,
          kind: SCHEDULE_KIND,
          name: metadata.name!,
          uid: metadata.uid,
          // The schedule is the run's controller: deleting it with the default (background)
          // cascade deletes its runs, and foreground deletion waits for their finalizers.
          controller: true,
          blockOwnerDeletion: true,
        },
      ],
    },
    spec: structuredClone(schedule.spec.template),
  };
}

/** What is wrong with spec.startingDeadline that the API server could not catch, or undefined. */
function deadlineProblem(startingDeadline: string | undefined): string | undefined {
  if (startingDeadline === undefined) return undefined;
  try {
    parseDuration(startingDeadline);
    return undefined;
  } catch {
    return `spec.startingDeadline: ${JSON.stringify(startingDeadline)} is not a duration such as 10m`;
  }
}

function phaseOf(snapshot: VMSnapshot): RetentionPhase {
  const phase = snapshot.status?.phase;
  return phase === "Succeeded" || phase === "Failed" ? phase : "InProgress";
}

function scheduledAt(snapshot: VMSnapshot): Date {
  const stamp =
    snapshot.metadata.annotations?.[SCHEDULED_AT_ANNOTATION] ?? snapshot.metadata.creationTimestamp;
  return new Date(stamp ?? 0);
}

function candidateOf(snapshot: VMSnapshot): RetentionCandidate {
  return { name: snapshot.metadata.name!, phase: phaseOf(snapshot), time: scheduledAt(snapshot) };
}

function countByPhase(snapshots: readonly VMSnapshot[]): ScheduleSnapshotCounts {
  const counts = { inProgress: 0, succeeded: 0, failed: 0 };
  for (const s of snapshots) {
    const phase = phaseOf(s);
    if (phase === "Succeeded") counts.succeeded++;
    else if (phase === "Failed") counts.failed++;
    else counts.inProgress++;
  }
  return counts;
}

/** The newest completion of a Succeeded run; never older than the one recorded before. */
function lastSuccess(
  snapshots: readonly VMSnapshot[],
  before: string | undefined,
): string | undefined {
  let newest = before ? Date.parse(before) : undefined;
  for (const s of snapshots) {
    if (phaseOf(s) !== "Succeeded") continue;
    const done = Date.parse(s.status?.completionTime ?? "");
    if (!Number.isNaN(done) && (newest === undefined || done > newest)) newest = done;
  }
  return newest === undefined ? undefined : new Date(newest).toISOString();
}

type ConditionValue = [status: ScheduleCondition["status"], reason: string, message: string];

/** Ready tells whether the schedule does its job: suspended, failing, or running on time. */
function readiness(
  live: readonly VMSnapshot[],
  next: Date | undefined,
  suspended: boolean,
): ConditionValue {
  if (suspended) return ["True", "Suspended", "suspended: no runs until spec.suspend is false"];
  const newestFinal = live
    .filter((s) => phaseOf(s) !== "InProgress")
    .sort((a, b) => scheduledAt(b).getTime() - scheduledAt(a).getTime())[0];
  if (newestFinal && phaseOf(newestFinal) === "Failed") {
    const error = newestFinal.status?.error;
    return [
      "False",
      "LastRunFailed",
      `the newest finished run, ${newestFinal.metadata.name}, failed${error ? `: ${error.reason}: ${error.message}` : ""}`,
    ];
  }
  return [
    "True",
    "Scheduled",
    next ? `next run at ${next.toISOString()}` : "the schedule has no further fire time",
  ];
}

function conditions(
  previous: VMSnapshotScheduleStatus,
  now: Date,
  generation: number | undefined,
  wanted: { ready: ConditionValue; reconciling: ConditionValue; stalled: ConditionValue },
): ScheduleCondition[] {
  const entries: Array<[ScheduleCondition["type"], ConditionValue]> = [
    ["Ready", wanted.ready],
    ["Reconciling", wanted.reconciling],
    ["Stalled", wanted.stalled],
  ];
  return entries.map(([type, [status, reason, message]]) => {
    const before = previous.conditions?.find((c) => c.type === type);
    return {
      type,
      status,
      reason,
      message,
      ...(generation !== undefined && { observedGeneration: generation }),
      lastTransitionTime:
        before && before.status === status ? before.lastTransitionTime : now.toISOString(),
    };
  });
}

/** The status fields a pass keeps unless it changes them. */
function carried(previous: VMSnapshotScheduleStatus): VMSnapshotScheduleStatus {
  const { conditions: _c, snapshots: _s, observedGeneration: _g, ...rest } = previous;
  return { ...rest };
}

function defined<K extends string, V>(key: K, value: V | undefined): { [P in K]?: V } {
  return value === undefined ? {} : ({ [key]: value } as { [P in K]: V });
}
