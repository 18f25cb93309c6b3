// Events and inputs for exercising the phase machine: one of every kind, at times that keep
// within the deadlines, plus late ones that break them.
import type { MemoryMode, QuiescePolicy } from "../../../src/api/types.ts";
import type { SnapshotInput } from "../../../src/machine/context.ts";
import type { SnapshotEvent } from "../../../src/machine/events.ts";

export const T0 = 1_000_000;
export const FREEZE_TIMEOUT_MS = 10_000;
export const FAILURE_DEADLINE_MS = 300_000;

export function input(
  memory: boolean,
  quiesce: QuiescePolicy,
  memoryMode: MemoryMode = "Paused",
): SnapshotInput {
  return {
    memory,
    memoryMode,
    quiesce,
    freezeTimeoutMs: FREEZE_TIMEOUT_MS,
    failureDeadlineMs: FAILURE_DEADLINE_MS,
    startedAt: T0,
  };
}

export const disks = [
  { target: "vda", backend: "rbd" as const, source: "rbd/vm-a", snapshot: "rbd/vm-a@s" },
];

export const ev = {
  armed: {
    type: "FREEZE_ARMED",
    at: T0 + 10,
    freezeDeadline: T0 + 10 + FREEZE_TIMEOUT_MS,
    domainUUID: "4dea22b3-1d52-d8f3-2516-782e98ab3fa0",
  },
  frozen: { type: "FROZEN", at: T0 + 100 },
  noAgent: { type: "UNQUIESCED", at: T0 + 50, reason: "NoGuestAgent", message: "no agent" },
  noAgentPinned: {
    type: "UNQUIESCED",
    at: T0 + 50,
    reason: "NoGuestAgent",
    message: "no agent",
    domainUUID: "4dea22b3-1d52-d8f3-2516-782e98ab3fa0",
  },
  freezeFailed: {
    type: "UNQUIESCED",
    at: T0 + 150,
    reason: "FreezeFailed",
    message: "hook failed",
  },
  disabled: { type: "UNQUIESCED", at: T0 + 50, reason: "QuiesceDisabled", message: "disabled" },
  paused: { type: "UNQUIESCED", at: T0 + 50, reason: "DomainPaused", message: "paused" },
  offline: { type: "UNQUIESCED", at: T0 + 50, reason: "DomainOffline", message: "shut off" },
  disksSnapshotted: { type: "DISKS_SNAPSHOTTED", at: T0 + 200, disks, pausedAt: T0 + 120 },
  disksLate: { type: "DISKS_SNAPSHOTTED", at: T0 + 15_000, disks, pausedAt: T0 + 120 },
  memorySaved: {
    type: "MEMORY_SAVED",
    at: T0 + 300,
    memory: { file: "/m", bytes: 1 },
    resumedAt: T0 + 300,
  },
  memoryCaptured: { type: "MEMORY_CAPTURED", at: T0 + 250 },
  thawed: { type: "THAWED", at: T0 + 400 },
  completed: { type: "COMPLETED", at: T0 + 500 },
  completedKept: {
    type: "COMPLETED",
    at: T0 + 500,
    definition: { backend: "rbd", location: "rbd/vm-a image-meta vmsnap.definition.s" },
  },
  storageFailed: { type: "FAILED", at: T0 + 250, reason: "StorageError", message: "rbd: boom" },
  tickPastFreeze: { type: "TICK", at: T0 + 12_000 },
  tickPastDeadline: { type: "TICK", at: T0 + FAILURE_DEADLINE_MS + 1 },
} satisfies Record<string, SnapshotEvent>;

export const allEvents: SnapshotEvent[] = Object.values(ev);

export const inputs = (
  [
    [false, "Paused"],
    [true, "Paused"],
    [true, "Live"],
  ] as const
).flatMap(([memory, mode]) =>
  (["Required", "IfAvailable", "Disabled"] as const).map((quiesce) => input(memory, quiesce, mode)),
);
