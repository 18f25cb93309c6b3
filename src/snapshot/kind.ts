// VMSnapshot as a kind of the one reconcile loop: its phase machine, its effects, its status
// codec and the wording of its Events, put together. Nothing here decides anything new.
import type { VMSnapshot } from "../api/types.ts";
import type { Announcement, Kind } from "../controller/kind.ts";
import { inFrozenWindow, passedDeadline, type SnapshotContext } from "../machine/context.ts";
import type { SnapshotEvent } from "../machine/events.ts";
import type { Compensation } from "../machine/machine.ts";
import { isFinal, step, type MachineState } from "../machine/step.ts";
import { snapshotNameOf, type SnapshotEffects } from "./effects.ts";
import { stateFromStatus, statusFromState } from "./status.ts";

/** Held while a snapshot's backend artefacts may exist. */
export const SNAPSHOT_FINALIZER = "vmsnap.io/artefacts";

export type SnapshotKind = Kind<VMSnapshot, MachineState, SnapshotEvent, Compensation>;

export function snapshotKind(effects: SnapshotEffects): SnapshotKind {
  return {
    name: "vmsnapshot",
    finalizer: SNAPSHOT_FINALIZER,
    stateOf: stateFromStatus,
    step,
    isFinal: (state) => isFinal(state.phase),
    // An effect never starts once its budget is spent: the machine judges the deadline instead.
    overdue: (state, now) =>
      passedDeadline(state.context, now) ? { type: "TICK", at: now } : undefined,
    statusOf: (snapshot, state, now, waiting) =>
      statusFromState(snapshot, state, now, {
        snapshotName: snapshotNameOf(snapshot),
        ...(snapshot.spec.disks?.exclude ? { excludedDisks: snapshot.spec.disks.exclude } : {}),
        ...(waiting ? { waiting } : {}),
      }),
    run: (snapshot, state) => effects.run(snapshot, state),
    compensate: (snapshot, state, next, actions) =>
      effects.compensate(snapshot, state, next, actions),
    finalize: (snapshot, state) => effects.finalize(snapshot, state),
    finish: (snapshot) => effects.finish(snapshot),
    forget: (key) => effects.forget(key),
    recover: (snapshots) => effects.recoverLeftovers(snapshots),
    revisit: async (snapshot, state) =>
      state.context.thawUnconfirmed === undefined
        ? undefined
        : effects.recheckThaw(snapshot, state),
    urgent: (state) => inFrozenWindow(state.context),
    writeAhead: (from, to) =>
      to.context.freezeDeadline !== undefined && from.context.freezeDeadline === undefined,
    announce: (_from, to) => announcement(to),
  };
}

/** One Event per transition, saying what happened in the words a user reads in `kubectl describe`. */
export function announcement(to: MachineState): Announcement {
  const c: SnapshotContext = to.context;
  if (to.phase === "Failed") {
    return { type: "Warning", reason: c.error!.reason, note: c.error!.message };
  }
  return { type: "Normal", reason: to.phase, note: noteFor(to.phase, c) };
}

function noteFor(phase: MachineState["phase"], c: SnapshotContext): string {
  switch (phase) {
    case "Frozen":
      return `froze the guest's filesystems (thawed by ${new Date(c.freezeDeadline!).toISOString()} at the latest)`;
    case "DisksSnapshotted":
      return `snapshotted ${c.disks.length} disk(s): ${c.disks.map((d) => d.snapshot).join(", ")}`;
    case "MemorySaved":
      return `saved ${c.memoryImage!.bytes} bytes of memory to ${c.memoryImage!.file}`;
    case "Thawed":
      return `thawed the guest after ${c.thawedAt! - c.frozenAt!} ms frozen`;
    default:
      return `snapshot ready${c.quiesced ? "" : ` (not quiesced: ${c.unquiesced?.reason})`}`;
  }
}
