// Machine state ↔ VMRestore status. Everything the machine's context needs is in status, so a
// restarted agent rebuilds it exactly; conditions follow kstatus (Ready, Reconciling, Stalled).
import { parseDuration } from "../api/duration.ts";
import type {
  RestoreCondition,
  RestoreFailureReason,
  VMRestore,
  VMRestoreStatus,
} from "../api/restore-types.ts";
import { defined, iso, toMs, withTransitionTimes } from "../controller/conditions.ts";
import type { Waiting } from "../controller/kind.ts";
import { thawedAfterResume, type RestoreContext, type RestoreInput } from "./context.ts";
import { isFinalRestore, rehydrateRestore, startRestore, type RestoreState } from "./step.ts";

const DEFAULT_THAW_TIMEOUT = "10s";
const DEFAULT_FAILURE_DEADLINE = "30m";

export function restoreInputFromSpec(restore: VMRestore, startedAt: number): RestoreInput {
  const spec = restore.spec;
  return {
    snapshotName: spec.snapshotName,
    newDomain: spec.target.newDomain?.name,
    memoryWanted: (spec.memory ?? "Restore") === "Restore",
    powerState: spec.powerState ?? "Running",
    stopRunningTarget: spec.stopRunningTarget ?? false,
    thawTimeoutMs: parseDuration(spec.thawTimeout ?? DEFAULT_THAW_TIMEOUT),
    failureDeadlineMs: parseDuration(spec.failureDeadline ?? DEFAULT_FAILURE_DEADLINE),
    startedAt,
  };
}

export function restoreStateFromStatus(restore: VMRestore, now: number): RestoreState {
  const status = restore.status;
  if (!status?.phase || status.startTime === undefined) {
    return startRestore(restoreInputFromSpec(restore, now));
  }
  const context: RestoreContext = {
    ...restoreInputFromSpec(restore, toMs(status.startTime)!),
    ...defined("targetDomain", status.targetDomain),
    ...defined("targetUUID", status.targetUUID),
    ...defined("node", status.node),
    ...defined("consistency", status.consistency),
    ...defined("restoresMemory", status.restoresMemory),
    restoredDisks: status.restoredDisks ?? [],
    memoryRestored: status.memoryRestored ?? false,
    ...defined("thawDeadline", toMs(status.thawDeadline)),
    ...defined("resumedAt", toMs(status.resumedAt)),
    ...defined("thawedAt", toMs(status.thawedAt)),
    ...defined("thawedFilesystems", status.thawedFilesystems),
    ...defined("thawedBy", status.thawedBy),
    ...defined("completedAt", toMs(status.completionTime)),
    ...defined(
      "error",
      status.error
        ? { reason: status.error.reason as RestoreFailureReason, message: status.error.message }
        : undefined,
    ),
  };
  return rehydrateRestore(status.phase, context);
}

export function restoreStatusFromState(
  restore: VMRestore,
  state: RestoreState,
  now: number,
  waiting?: Waiting,
): VMRestoreStatus {
  const c = state.context;
  const generation = restore.metadata.generation;
  return {
    phase: state.phase,
    ...defined("observedGeneration", generation),
    ...defined("node", c.node),
    ...defined("targetDomain", c.targetDomain),
    ...defined("targetUUID", c.targetUUID),
    restoredDisks: c.restoredDisks.map((d) => ({ ...d })),
    ...defined("restoresMemory", c.restoresMemory),
    memoryRestored: c.memoryRestored,
    ...defined("consistency", c.consistency),
    startTime: iso(c.startedAt),
    ...defined("thawDeadline", iso(c.thawDeadline)),
    ...defined("resumedAt", iso(c.resumedAt)),
    ...defined("thawedAt", iso(c.thawedAt)),
    ...defined("thawedFilesystems", c.thawedFilesystems),
    ...defined("thawedBy", c.thawedBy),
    ...defined(
      "resumeToThawMs",
      c.resumedAt !== undefined && c.thawedAt !== undefined ? c.thawedAt - c.resumedAt : undefined,
    ),
    ...defined(
      "completionTime",
      isFinalRestore(state.phase) ? iso(c.completedAt ?? now) : undefined,
    ),
    ...defined("error", c.error ? { ...c.error } : undefined),
    conditions: withTransitionTimes(
      conditionsOf(state, waiting),
      restore.status?.conditions ?? [],
      now,
      generation,
    ),
  };
}

function conditionsOf(
  state: RestoreState,
  waiting: Waiting | undefined,
): Array<Omit<RestoreCondition, "lastTransitionTime">> {
  const { phase, context: c } = state;
  const failed = phase === "Failed";
  const succeeded = phase === "Succeeded";
  const final = isFinalRestore(phase);
  return [
    {
      type: "Ready",
      status: succeeded ? "True" : "False",
      reason: succeeded ? "Succeeded" : failed ? c.error!.reason : phase,
      message: succeeded
        ? readyMessage(c)
        : failed
          ? c.error!.message
          : `restore in progress: ${phase}`,
    },
    {
      type: "Reconciling",
      status: final ? "False" : "True",
      reason: final ? phase : (waiting?.reason ?? phase),
      message: final ? "no further work" : (waiting?.message ?? `working on phase ${phase}`),
    },
    {
      type: "Stalled",
      status: failed ? "True" : "False",
      reason: failed ? c.error!.reason : "NotStalled",
      message: failed ? c.error!.message : "no error",
    },
  ];
}

function readyMessage(c: RestoreContext): string {
  const what = c.memoryRestored
    ? `disks and memory restored, thawed ${thawedAfterResume(c)}`
    : `${c.restoredDisks.length} disk(s) restored`;
  const consistency =
    c.consistency === "ApplicationConsistent"
      ? "application-consistent (the snapshot was quiesced)"
      : "crash-consistent (the snapshot was not quiesced)";
  return `${c.targetDomain}: ${what}; ${consistency}`;
}
