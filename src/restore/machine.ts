// The VMRestore phase machine (xstate 5), pure like the snapshot's: the reconcile loop runs the
// effect of the current step, turns its outcome into an event and asks transition() for the
// next state. Only the phase is persisted; the step inside a phase follows from the context.
//
// Steps: Pending.{Validating, Stopping, RestoringDisks} → TargetStopped → DisksRestored.
// {RestoringMemory, Defining} → MemoryRestored → Resumed → Thawed → Succeeded | Failed.
//
// Invariants (test/unit/restore/machine.test.ts):
// - a phase is entered only by its own effect's event: TargetStopped only when this restore
//   stopped the target, MemoryRestored only when RAM came back, Thawed only on a confirmed thaw;
// - a RAM image is never resumed without a thaw deadline recorded first (write-ahead);
// - a memory restore never reaches Succeeded without Thawed.
import { assertEvent, assign, setup } from "xstate";
import { overdueReason, type RestoreContext, type RestoreInput } from "./context.ts";
import type { RestoreEvent } from "./events.ts";

export const restoreMachine = setup({
  types: {
    context: {} as RestoreContext,
    events: {} as RestoreEvent,
    input: {} as RestoreInput,
  },
  guards: {
    stopFirst: ({ event }) => event.type === "VALIDATED" && event.stopFirst,
    restoresMemory: ({ context }) => context.restoresMemory === true,
    overdue: ({ context, event }) => overdueReason(context, event.at) !== undefined,
  },
  actions: {
    validated: assign(({ event }) => {
      assertEvent(event, "VALIDATED");
      return {
        targetDomain: event.targetDomain,
        targetUUID: event.targetUUID,
        node: event.node,
        consistency: event.consistency,
        restoresMemory: event.restoresMemory,
        stopFirst: event.stopFirst,
      };
    }),
    disksRestored: assign(({ event }) => {
      assertEvent(event, "DISKS_RESTORED");
      return { restoredDisks: [...event.disks] };
    }),
    memoryRestored: assign(({ event }) => {
      assertEvent(event, "MEMORY_RESTORED");
      return { memoryRestored: true, thawDeadline: event.thawDeadline };
    }),
    resumed: assign(({ event }) => {
      assertEvent(event, "RESUMED");
      return { resumedAt: event.at };
    }),
    thawed: assign(({ event }) => {
      assertEvent(event, "THAWED");
      return { thawedAt: event.at, thawedFilesystems: event.filesystems, thawedBy: event.by };
    }),
    completed: assign(({ event }) => ({ completedAt: event.at })),
    failed: assign(({ event }) => {
      assertEvent(event, "FAILED");
      return { error: { reason: event.reason, message: event.message }, completedAt: event.at };
    }),
    overdue: assign(({ context, event }) => {
      const reason = overdueReason(context, event.at)!;
      const message =
        reason === "ThawFailed"
          ? `the restored guest was not confirmed thawed by ${new Date(context.thawDeadline!).toISOString()}; the thaw guard thaws it`
          : `the restore did not finish within spec.failureDeadline (${context.failureDeadlineMs} ms)`;
      return { error: { reason, message }, completedAt: event.at };
    }),
  },
}).createMachine({
  id: "vmrestore",
  context: ({ input }) => ({ ...input, restoredDisks: [], memoryRestored: false }),
  initial: "Pending",
  // A failure or a spent budget ends any unfinished step; final states take no event.
  on: {
    FAILED: { target: ".Failed", actions: "failed" },
    TICK: { guard: "overdue", target: ".Failed", actions: "overdue" },
  },
  states: {
    Pending: {
      initial: "Validating",
      states: {
        Validating: {
          on: {
            VALIDATED: [
              { guard: "stopFirst", target: "Stopping", actions: "validated" },
              { target: "RestoringDisks", actions: "validated" },
            ],
          },
        },
        Stopping: { on: { TARGET_STOPPED: "#vmrestore.TargetStopped" } },
        RestoringDisks: {
          on: { DISKS_RESTORED: { target: "#vmrestore.DisksRestored", actions: "disksRestored" } },
        },
      },
    },
    TargetStopped: {
      on: { DISKS_RESTORED: { target: "DisksRestored", actions: "disksRestored" } },
    },
    DisksRestored: {
      initial: "Route",
      states: {
        Route: {
          always: [{ guard: "restoresMemory", target: "RestoringMemory" }, { target: "Defining" }],
        },
        RestoringMemory: {
          on: {
            MEMORY_RESTORED: { target: "#vmrestore.MemoryRestored", actions: "memoryRestored" },
          },
        },
        Defining: {
          on: { COMPLETED: { target: "#vmrestore.Succeeded", actions: "completed" } },
        },
      },
    },
    MemoryRestored: { on: { RESUMED: { target: "Resumed", actions: "resumed" } } },
    Resumed: { on: { THAWED: { target: "Thawed", actions: "thawed" } } },
    Thawed: { on: { COMPLETED: { target: "Succeeded", actions: "completed" } } },
    Succeeded: { type: "final" },
    Failed: { type: "final" },
  },
});
