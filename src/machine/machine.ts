// The VMSnapshot phase machine (xstate 5), pure: no invoke, no timers, no clock. The reconcile
// loop runs the effect of the current *step* (a leaf state), turns its outcome into an event
// carrying the time, and asks `transition()` for the next state and for the compensating
// actions to run (thaw, resume, remove partial artefacts). Only the phase (the top-level state)
// is persisted in status; the step inside a phase is settled by the machine's own eventless
// routing from the context (see step.ts `restore`), so which effect runs next is decided here
// and nowhere else.
//
// Steps: Pending.{Inspecting, Armed, Unfrozen} → Frozen → DisksSnapshotted.{SavingMemory,
// CapturingMemory, Thawing, WritingMemory, Completing} → MemorySaved.{Thawing, Completing} →
// Thawed.{WritingMemory, Completing} → Succeeded | Failed.
//
// Live memory (spec.memoryMode Live) captures RAM inside the pause (CapturingMemory: the vCPUs
// run again once QEMU armed it) and writes it after the thaw (Thawed.WritingMemory), so its
// phases read Frozen → DisksSnapshotted → Thawed → MemorySaved: each one when it happened.
//
// Invariants (checked on every path of the graph by test/unit/machine):
// - a guest that was frozen ends thawed: by a THAWED event, or a `thaw` action on failure;
// - vCPUs we may have paused end running: a MEMORY_SAVED event, or a `resumeVcpus` action;
// - each phase is entered only by the event of its own effect (no phase is claimed unearned);
// - `memory: true` never reaches Succeeded without MemorySaved;
// - the quiesce policy decides whether an unfrozen snapshot may go on, never the effect code.
import { assertEvent, assign, setup } from "xstate";
import { FailureReason, UnquiescedReason } from "../api/reasons.ts";
import {
  frozenByUs,
  mayBeFrozen,
  mayHavePaused,
  passedDeadline,
  savesMemoryLive,
  type SnapshotContext,
  type SnapshotInput,
} from "./context.ts";
import type { SnapshotEvent, UnquiescedEvent } from "./events.ts";

/** Which unfrozen snapshots each policy accepts; anything else fails with the mapped reason. */
export function unquiescedVerdict(
  context: SnapshotContext,
  event: UnquiescedEvent,
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

/** Why a transition fails the snapshot: the event says so, or a deadline, or the quiesce policy. */
type FailureCause = "event" | "deadline" | "policy";

function failure(cause: FailureCause, context: SnapshotContext, event: SnapshotEvent) {
  switch (cause) {
    case "deadline":
      return passedDeadline(context, event.at) === "freezeTimeout"
        ? {
            reason: FailureReason.FreezeTimeout,
            message: `the guest stayed frozen past spec.freezeTimeout (${context.freezeTimeoutMs} ms); it was thawed`,
          }
        : {
            reason: FailureReason.DeadlineExceeded,
            message: `the snapshot did not finish within spec.failureDeadline (${context.failureDeadlineMs} ms)`,
          };
    case "policy": {
      assertEvent(event, "UNQUIESCED");
      const verdict = unquiescedVerdict(context, event);
      return {
        reason: verdict.accept ? FailureReason.QuiesceFailed : verdict.reason,
        message: event.message,
      };
    }
    case "event":
      assertEvent(event, "FAILED");
      return { reason: event.reason, message: event.message };
  }
}

const FAIL = { target: "#vmsnapshot.Failed" as const };

/**
 * The deadline check every step runs first, for every event it takes. Typed as an empty tuple
 * only because xstate's config types cannot infer a shared array spread into per-event
 * transition lists; the unit tests exercise it on every path.
 */
function deadline(): [] {
  return [
    {
      guard: "pastDeadline",
      ...FAIL,
      actions: ["compensate", { type: "recordFailure", params: { cause: "deadline" } }],
    },
  ] as unknown as [];
}

/** The quiesce decision of Pending: go on unfrozen when the policy allows, else fail. */
function decideUnquiesced(): [] {
  return [
    ...deadline(),
    { guard: "unquiescedAccepted", target: "Unfrozen", actions: "recordUnquiesced" },
    {
      ...FAIL,
      // recordUnquiesced first: it closes this attempt's freeze window (the effect reports
      // UNQUIESCED only once no freeze of ours can be in the guest: it thawed a failed freeze,
      // or the freeze was someone else's), so the compensations do not thaw it.
      actions: [
        "recordUnquiesced",
        "compensate",
        { type: "recordFailure", params: { cause: "policy" } },
      ],
    },
  ] as unknown as []; // typed as deadline() is, for the same reason
}

/** Live memory's last step, once the vCPUs run again: QEMU writes the captured RAM. */
function writingMemory() {
  return {
    on: {
      MEMORY_SAVED: [
        ...deadline(),
        { target: "#vmsnapshot.MemorySaved", actions: "recordMemory" as const },
      ],
    },
  };
}

/**
 * The last steps once disks (and memory) are taken, shared by DisksSnapshotted and MemorySaved:
 * thaw the guest if this attempt froze it, then complete.
 */
function finishingSteps() {
  return {
    Thawing: {
      on: {
        THAWED: [...deadline(), { target: "#vmsnapshot.Thawed", actions: "recordThaw" as const }],
      },
    },
    Completing: {
      on: {
        COMPLETED: [
          ...deadline(),
          { target: "#vmsnapshot.Succeeded", actions: "recordCompletion" as const },
        ],
      },
    },
  };
}

export const snapshotMachine = setup({
  types: {
    context: {} as SnapshotContext,
    events: {} as SnapshotEvent,
    input: {} as SnapshotInput,
  },
  actions: {
    // Undo what this attempt did; the loop sees this action in transition()'s result and runs
    // compensationsFor(the new context). Nothing runs inside the machine.
    compensate: () => {},
    recordFailure: assign(({ context, event }, params: { cause: FailureCause }) => ({
      error: failure(params.cause, context, event),
      completedAt: event.at,
    })),
    armFreeze: assign(({ event }) => {
      assertEvent(event, "FREEZE_ARMED");
      return {
        freezeDeadline: event.freezeDeadline,
        ...(event.domainUUID === undefined ? {} : { domainUUID: event.domainUUID }),
      };
    }),
    recordFrozen: assign(({ event }) => ({ frozenAt: event.at, quiesced: true })),
    recordUnquiesced: assign(({ context, event }) => {
      assertEvent(event, "UNQUIESCED");
      return {
        quiesced: false,
        unquiesced: { reason: event.reason, message: event.message },
        // Unfrozen snapshots pin the domain too: removal and restores name what it made by it.
        ...(context.domainUUID === undefined && event.domainUUID !== undefined
          ? { domainUUID: event.domainUUID }
          : {}),
        // After an armed freeze that did not happen, this attempt's freeze window is closed: the
        // effect thawed (a failed freeze may land late), or the freeze was someone else's.
        ...(context.freezeDeadline !== undefined ? { thawedAt: event.at } : {}),
      };
    }),
    recordDisks: assign(({ event }) => {
      assertEvent(event, "DISKS_SNAPSHOTTED");
      return {
        disks: event.disks,
        ...(event.pausedAt !== undefined ? { pausedAt: event.pausedAt } : {}),
      };
    }),
    recordMemory: assign(({ event }) => {
      assertEvent(event, "MEMORY_SAVED");
      return { memoryImage: event.memory, resumedAt: event.resumedAt };
    }),
    recordCapture: assign(({ event }) => ({ memoryCapturedAt: event.at, resumedAt: event.at })),
    recordThaw: assign(({ event }) => ({ thawedAt: event.at })),
    recordCompletion: assign(({ event }) => ({
      completedAt: event.at,
      ...(event.type === "COMPLETED" && event.definition ? { definition: event.definition } : {}),
    })),
  },
  guards: {
    pastDeadline: ({ context, event }) => passedDeadline(context, event.at) !== undefined,
    quiesceEnabled: ({ context }) => context.quiesce !== "Disabled",
    unquiescedAccepted: ({ context, event }) =>
      event.type === "UNQUIESCED" && unquiescedVerdict(context, event).accept,
    // Routing: which step of a phase a (re)entered state is on, from the facts alone.
    decidedUnfrozen: ({ context }) => context.quiesced === false,
    armed: ({ context }) => context.freezeDeadline !== undefined,
    savesMemoryPaused: ({ context }) => context.memory && !savesMemoryLive(context),
    capturesMemory: ({ context }) =>
      savesMemoryLive(context) && context.memoryCapturedAt === undefined,
    writesMemory: ({ context }) => savesMemoryLive(context) && context.memoryImage === undefined,
    frozenByUs: ({ context }) => frozenByUs(context),
  },
}).createMachine({
  id: "vmsnapshot",
  initial: "Pending",
  context: ({ input }) => ({ ...input, disks: [] }),
  // An effect's failure, from any step. Final states take no events, so this never reopens one.
  on: {
    FAILED: {
      ...FAIL,
      actions: ["compensate", { type: "recordFailure", params: { cause: "event" } }],
    },
  },
  states: {
    Pending: {
      initial: "Route",
      on: { TICK: deadline() },
      states: {
        Route: {
          always: [
            { guard: "decidedUnfrozen", target: "Unfrozen" },
            { guard: "armed", target: "Armed" },
            { target: "Inspecting" },
          ],
        },
        /** Look at the domain, claim it, and decide: arm a freeze, or say why not. */
        Inspecting: {
          on: {
            FREEZE_ARMED: [
              ...deadline(),
              { guard: "quiesceEnabled", target: "Armed", actions: "armFreeze" },
            ],
            UNQUIESCED: decideUnquiesced(),
          },
        },
        /** The freeze deadline is in status: hand it to the guard, then freeze. */
        Armed: {
          on: {
            FROZEN: [...deadline(), { target: "#vmsnapshot.Frozen", actions: "recordFrozen" }],
            UNQUIESCED: decideUnquiesced(),
          },
        },
        /** No freeze, accepted by the policy: snapshot the disks as they are. */
        Unfrozen: {
          on: {
            DISKS_SNAPSHOTTED: [
              ...deadline(),
              { target: "#vmsnapshot.DisksSnapshotted", actions: "recordDisks" },
            ],
          },
        },
      },
    },
    Frozen: {
      on: {
        TICK: deadline(),
        DISKS_SNAPSHOTTED: [...deadline(), { target: "DisksSnapshotted", actions: "recordDisks" }],
      },
    },
    DisksSnapshotted: {
      initial: "Route",
      on: { TICK: deadline() },
      states: {
        Route: {
          always: [
            { guard: "capturesMemory", target: "CapturingMemory" },
            { guard: "savesMemoryPaused", target: "SavingMemory" },
            { guard: "frozenByUs", target: "Thawing" },
            // Live and never frozen (taken unquiesced): no thaw; the image is written now.
            { guard: "writesMemory", target: "WritingMemory" },
            { target: "Completing" },
          ],
        },
        SavingMemory: {
          on: {
            MEMORY_SAVED: [
              ...deadline(),
              { target: "#vmsnapshot.MemorySaved", actions: "recordMemory" },
            ],
          },
        },
        /** The vCPUs paused and the disks taken: QEMU captures RAM and runs the vCPUs again. */
        CapturingMemory: {
          on: {
            MEMORY_CAPTURED: [...deadline(), { target: "Route", actions: "recordCapture" }],
          },
        },
        WritingMemory: writingMemory(),
        ...finishingSteps(),
      },
    },
    MemorySaved: {
      initial: "Route",
      on: { TICK: deadline() },
      states: {
        Route: {
          always: [{ guard: "frozenByUs", target: "Thawing" }, { target: "Completing" }],
        },
        ...finishingSteps(),
      },
    },
    Thawed: {
      initial: "Route",
      on: { TICK: deadline() },
      states: {
        Route: {
          always: [{ guard: "writesMemory", target: "WritingMemory" }, { target: "Completing" }],
        },
        WritingMemory: writingMemory(),
        Completing: finishingSteps().Completing,
      },
    },
    Succeeded: { type: "final" },
    Failed: { type: "final" },
  },
});

export type Compensation = "resumeVcpus" | "thaw" | "removeArtefacts";

/**
 * What a failure must undo, in order: resume the vCPUs if we may have paused them (first: a
 * paused guest's agent cannot thaw), thaw if we may have frozen the guest, and always remove
 * this attempt's partial artefacts.
 */
export function compensationsFor(context: SnapshotContext): Compensation[] {
  const actions: Compensation[] = [];
  if (mayHavePaused(context)) actions.push("resumeVcpus");
  if (mayBeFrozen(context)) actions.push("thaw");
  actions.push("removeArtefacts");
  return actions;
}
