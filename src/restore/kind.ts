// VMRestore as a kind of the one reconcile loop: its machine, effects, status codec and Events.
import type { VMRestore } from "../api/restore-types.ts";
import type { Announcement, Kind } from "../controller/kind.ts";
import { awaitingThaw, overdueReason, thawedAfterResume, type RestoreContext } from "./context.ts";
import type { RestoreEffects } from "./effects.ts";
import type { RestoreEvent } from "./events.ts";
import { restoreStateFromStatus, restoreStatusFromState } from "./status.ts";
import {
  isFinalRestore,
  stepRestore,
  type RestoreCompensation,
  type RestoreState,
} from "./step.ts";

/** Held while a restore may have a guest to settle or a snapshot pinned. */
export const RESTORE_FINALIZER = "vmsnap.io/restore";

export type RestoreKind = Kind<VMRestore, RestoreState, RestoreEvent, RestoreCompensation>;

export function restoreKind(effects: RestoreEffects): RestoreKind {
  return {
    name: "vmrestore",
    finalizer: RESTORE_FINALIZER,
    handles: (restore) => effects.handles(restore),
    stateOf: restoreStateFromStatus,
    step: stepRestore,
    isFinal: (state) => isFinalRestore(state.phase),
    overdue: (state, now) =>
      overdueReason(state.context, now) !== undefined ? { type: "TICK", at: now } : undefined,
    statusOf: (restore, state, now, waiting) =>
      restoreStatusFromState(restore, state, now, waiting),
    run: (restore, state) => effects.run(restore, state),
    compensate: (restore, state, next, actions) =>
      effects.compensate(restore, state, next, actions),
    finalize: (restore, state) => effects.finalize(restore, state),
    finish: (restore) => effects.finish(restore),
    forget: (key) => effects.forget(key),
    // A resumed guest waiting for its thaw: nothing may delay it.
    urgent: (state) => state.context.resumedAt !== undefined && awaitingThaw(state.context),
    // The thaw deadline reaches status before the vCPUs run (a restarted agent thaws by then).
    writeAhead: (from, to) =>
      to.context.thawDeadline !== undefined && from.context.thawDeadline === undefined,
    announce: (_from, to) => restoreAnnouncement(to),
  };
}

export function restoreAnnouncement(to: RestoreState): Announcement {
  const c: RestoreContext = to.context;
  if (to.phase === "Failed")
    return { type: "Warning", reason: c.error!.reason, note: c.error!.message };
  return { type: "Normal", reason: to.phase, note: noteFor(to.phase, c) };
}

function noteFor(phase: RestoreState["phase"], c: RestoreContext): string {
  switch (phase) {
    case "TargetStopped":
      return `stopped domain ${c.targetDomain} to restore it`;
    case "DisksRestored":
      return `restored ${c.restoredDisks.length} disk(s): ${c.restoredDisks.map((d) => `${d.target} (${d.method})`).join(", ")}`;
    case "MemoryRestored":
      return `restored the RAM of ${c.targetDomain}, paused; thawed by ${new Date(c.thawDeadline!).toISOString()} at the latest`;
    case "Resumed":
      return `resumed ${c.targetDomain}; thawing its filesystems`;
    case "Thawed":
      return `thawed ${c.targetDomain} ${thawedAfterResume(c)}`;
    default:
      return `restored ${c.targetDomain} from VMSnapshot ${c.snapshotName}`;
  }
}
