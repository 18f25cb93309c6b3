// The VMSnapshot phase machine (xstate 5), pure: no invoke, no timers, no clock. The reconciler
// runs the effect of the current phase, turns its outcome into an event carrying the time, and
// asks `transition()` for the next phase and for the compensating actions to run (thaw, resume,
// remove partial artefacts). The phase is persisted in status; see src/controller/status.ts.
//
// Invariants (checked on every path of the graph by test/unit/machine):
// - a guest that was frozen ends thawed: by a THAWED event, or a `thaw` action on failure;
// - vCPUs we may have paused end running: a MEMORY_SAVED event, or a `resumeVcpus` action;
// - each phase is entered only by the event of its own effect (no phase is claimed unearned);
// - `memory: true` never reaches Succeeded without MemorySaved;
// - the quiesce policy decides whether an unfrozen snapshot may go on, never the effect code.
import { assign, setup } from "xstate";
import { FailureReason, UnquiescedReason } from "../api/reasons.ts";
import { mayBeFrozen, type SnapshotContext, type SnapshotInput } from "./context.ts";
import type { SnapshotEvent } from "./events.ts";

type EventOf<T extends SnapshotEvent["type"]> = Extract<SnapshotEvent, { type: T }>;

/** May the vCPUs have been paused by us? Only a VM snapshot of a domain that was running. */
export function mayHavePaused(context: SnapshotContext): boolean {
  if (!context.memory) return false;
  if (context.freezeDeadline !== undefined) return true;
  const reason = context.unquiesced?.reason;
  return (
    reason !== undefined &&
    reason !== UnquiescedReason.DomainPaused &&
    reason !== UnquiescedReason.DomainOffline
  );
}

/** Which unfrozen snapshots each policy accepts; anything else fails with the mapped reason. */
function unquiescedVerdict(
  context: SnapshotContext,
  event: EventOf<"UNQUIESCED">,
): { accept: true } | { accept: false; reason: FailureReason } {
  switch (event.reason) {
    case UnquiescedReason.DomainOffline:
      // A shut-off guest's disks are at rest: consistent without a freeze, but it has no RAM.
      return context.memory
        ? { accept: false, reason: FailureReason.MemorySnapshotOfOfflineDomain }
        : { accept: true };
    case UnquiescedReason.QuiesceDisabled:
      return context.quiesce === "Disabled"
        ? { accept: true }
        : { accept: false, reason: FailureReason.QuiesceFailed };
    case UnquiescedReason.NoGuestAgent:
    case UnquiescedReason.DomainPaused:
      return context.quiesce === "Required"
        ? { accept: false, reason: FailureReason.GuestAgentUnavailable }
        : { accept: true };
    case UnquiescedReason.FreezeFailed:
      return context.quiesce === "Required"
        ? { accept: false, reason: FailureReason.QuiesceFailed }
        : { accept: true };
  }
}

function failureDeadline(context: SnapshotContext): number {
  return context.startedAt + context.failureDeadlineMs;
}

/** Why a transition fails the snapshot: the event says so, or a deadline, or the quiesce policy. */
type FailureCause = "event" | "freezeTimeout" | "failureDeadline" | "policy";

function failure(cause: FailureCause, context: SnapshotContext, event: SnapshotEvent) {
  switch (cause) {
    case "freezeTimeout":
      return {
        reason: FailureReason.FreezeTimeout,
        message: `the guest stayed frozen past spec.freezeTimeout (${context.freezeTimeoutMs} ms); it was thawed`,
      };
    case "failureDeadline":
      return {
        reason: FailureReason.DeadlineExceeded,
        message: `the snapshot did not finish within spec.failureDeadline (${context.failureDeadlineMs} ms)`,
      };
    case "policy": {
      const e = event as EventOf<"UNQUIESCED">;
      const verdict = unquiescedVerdict(context, e);
      return {
        reason: verdict.accept ? FailureReason.QuiesceFailed : verdict.reason,
        message: e.message,
      };
    }
    case "event": {
      const e = event as EventOf<"FAILED">;
      return { reason: e.reason, message: e.message };
    }
  }
}

/**
 * The deadline checks every non-final state runs first, for every event it takes. Typed as an
 * empty tuple only because xstate's config types cannot infer a shared array spread into
 * per-event transition lists; the unit tests exercise every one of these transitions.
 */
function deadlines(): [] {
  return DEADLINE_CHECKS as unknown as [];
}

const DEADLINE_CHECKS = [
  {
    guard: "pastFreezeDeadline" as const,
    target: "#vmsnapshot.Failed" as const,
    actions: [
      "compensate" as const,
      { type: "recordFailure" as const, params: { cause: "freezeTimeout" as const } },
    ],
  },
  {
    guard: "pastFailureDeadline" as const,
    target: "#vmsnapshot.Failed" as const,
    actions: [
      "compensate" as const,
      { type: "recordFailure" as const, params: { cause: "failureDeadline" as const } },
    ],
  },
];

export const snapshotMachine = setup({
  types: {
    context: {} as SnapshotContext,
    events: {} as SnapshotEvent,
    input: {} as SnapshotInput,
  },
  actions: {
    // Undo what this attempt did; the reconciler sees this action in transition()'s result and
    // runs compensationsFor(context of the state it left). Nothing runs inside the machine.
    compensate: () => {},
    recordFailure: assign(({ context, event }, params: { cause: FailureCause }) => ({
      error: failure(params.cause, context, event),
      completedAt: event.at,
    })),
    armFreeze: assign(({ event }) => ({
      freezeDeadline: (event as EventOf<"FREEZE_ARMED">).freezeDeadline,
    })),
    recordFrozen: assign(({ event }) => ({ frozenAt: event.at, quiesced: true })),
    recordUnquiesced: assign(({ context, event }) => {
      const e = event as EventOf<"UNQUIESCED">;
      return {
        quiesced: false,
        unquiesced: { reason: e.reason, message: e.message },
        // After an armed freeze that failed, the effect has thawed (a late freeze may have landed).
        ...(context.freezeDeadline !== undefined ? { thawedAt: e.at } : {}),
      };
    }),
    recordDisks: assign(({ event }) => {
      const e = event as EventOf<"DISKS_SNAPSHOTTED">;
      return { disks: e.disks, ...(e.pausedAt !== undefined ? { pausedAt: e.pausedAt } : {}) };
    }),
    recordMemory: assign(({ event }) => {
      const e = event as EventOf<"MEMORY_SAVED">;
      return { memoryImage: e.memory, resumedAt: e.resumedAt };
    }),
    recordThaw: assign(({ event }) => ({ thawedAt: event.at })),
    recordCompletion: assign(({ event }) => ({ completedAt: event.at })),
  },
  guards: {
    pastFailureDeadline: ({ context, event }) => event.at > failureDeadline(context),
    pastFreezeDeadline: ({ context, event }) =>
      context.frozenAt !== undefined && mayBeFrozen(context) && event.at > context.freezeDeadline!,
    freezeAllowed: ({ context }) =>
      context.quiesce !== "Disabled" &&
      context.quiesced === undefined &&
      context.freezeDeadline === undefined,
    freezeArmed: ({ context }) =>
      context.freezeDeadline !== undefined &&
      context.frozenAt === undefined &&
      context.quiesced === undefined,
    /** The quiesce decision (frozen, or not and why) is taken exactly once. */
    undecided: ({ context }) => context.quiesced === undefined,
    unquiescedAccepted: ({ context, event }) =>
      event.type === "UNQUIESCED" &&
      context.quiesced === undefined &&
      unquiescedVerdict(context, event).accept,
    proceedingUnfrozen: ({ context }) => context.quiesced === false,
    wantsMemory: ({ context }) => context.memory,
    frozenByUs: ({ context }) => context.frozenAt !== undefined && mayBeFrozen(context),
    neverFrozen: ({ context }) => context.frozenAt === undefined,
    frozenWithoutMemory: ({ context }) =>
      !context.memory && context.frozenAt !== undefined && mayBeFrozen(context),
    unfrozenWithoutMemory: ({ context }) => !context.memory && context.frozenAt === undefined,
  },
}).createMachine({
  id: "vmsnapshot",
  initial: "Pending",
  context: ({ input }) => ({ ...input, disks: [] }),
  // An effect's failure, from any phase. Final states take no events, so this never reopens one.
  on: {
    FAILED: {
      target: ".Failed",
      actions: ["compensate", { type: "recordFailure", params: { cause: "event" } }],
    },
  },
  states: {
    Pending: {
      on: {
        TICK: deadlines(),
        FREEZE_ARMED: [...deadlines(), { guard: "freezeAllowed", actions: "armFreeze" }],
        FROZEN: [
          ...deadlines(),
          { guard: "freezeArmed", target: "Frozen", actions: "recordFrozen" },
        ],
        UNQUIESCED: [
          ...deadlines(),
          { guard: "unquiescedAccepted", actions: "recordUnquiesced" },
          {
            guard: "undecided",
            target: "Failed",
            actions: ["compensate", { type: "recordFailure", params: { cause: "policy" } }],
          },
        ],
        DISKS_SNAPSHOTTED: [
          ...deadlines(),
          { guard: "proceedingUnfrozen", target: "DisksSnapshotted", actions: "recordDisks" },
        ],
      },
    },
    Frozen: {
      on: {
        TICK: deadlines(),
        DISKS_SNAPSHOTTED: [...deadlines(), { target: "DisksSnapshotted", actions: "recordDisks" }],
      },
    },
    DisksSnapshotted: {
      on: {
        TICK: deadlines(),
        MEMORY_SAVED: [
          ...deadlines(),
          { guard: "wantsMemory", target: "MemorySaved", actions: "recordMemory" },
        ],
        THAWED: [
          ...deadlines(),
          { guard: "frozenWithoutMemory", target: "Thawed", actions: "recordThaw" },
        ],
        COMPLETED: [
          ...deadlines(),
          { guard: "unfrozenWithoutMemory", target: "Succeeded", actions: "recordCompletion" },
        ],
      },
    },
    MemorySaved: {
      on: {
        TICK: deadlines(),
        THAWED: [...deadlines(), { guard: "frozenByUs", target: "Thawed", actions: "recordThaw" }],
        COMPLETED: [
          ...deadlines(),
          { guard: "neverFrozen", target: "Succeeded", actions: "recordCompletion" },
        ],
      },
    },
    Thawed: {
      on: {
        TICK: deadlines(),
        COMPLETED: [...deadlines(), { target: "Succeeded", actions: "recordCompletion" }],
      },
    },
    Succeeded: { type: "final" },
    Failed: { type: "final" },
  },
});

export type SnapshotMachine = typeof snapshotMachine;

export type Compensation = "resumeVcpus" | "thaw" | "removeArtefacts";

/**
 * What a failure must undo, in order: resume the vCPUs if we may have paused them (first: a
 * paused guest's agent cannot thaw), thaw if we may have frozen the guest, and always remove
 * this attempt's partial artefacts.
 */
export function compensationsFor(context: SnapshotContext): Compensation[] {
  const actions: Compensation[] = [];
  if (mayHavePaused(context) && context.resumedAt === undefined) actions.push("resumeVcpus");
  if (mayBeFrozen(context)) actions.push("thaw");
  actions.push("removeArtefacts");
  return actions;
}
