// What the reconciler observed, as typed events for the phase machine. Each carries the time it
// happened (`at`, epoch ms): the machine has no clock and no timers of its own, so deadlines are
// judged from event times and replays are deterministic.
import type { FailureReason, UnquiescedReason } from "../api/reasons.ts";
import type { DiskSnapshotHandle, StoredDefinition } from "../storage/backend.ts";

interface Timed {
  /** When it happened, epoch milliseconds. */
  readonly at: number;
}

/** The domain was inspected and vmsnap is about to freeze: the deadline is written first. */
export interface FreezeArmedEvent extends Timed {
  readonly type: "FREEZE_ARMED";
  readonly freezeDeadline: number;
  /** The domain's UUID as looked up: the identity every later thaw checks. */
  readonly domainUUID?: string;
}

/** virDomainFSFreeze returned: the guest's filesystems are frozen. */
export interface FrozenEvent extends Timed {
  readonly type: "FROZEN";
}

/** No freeze will happen, and why; the policy decides whether that is acceptable. */
export interface UnquiescedEvent extends Timed {
  readonly type: "UNQUIESCED";
  readonly reason: UnquiescedReason;
  readonly message: string;
  /** The domain's UUID when this decision was made at the first look-up (no freeze armed). */
  readonly domainUUID?: string;
}

/** Every disk that takes part has its snapshot (for a VM snapshot, the vCPUs were paused first). */
export interface DisksSnapshottedEvent extends Timed {
  readonly type: "DISKS_SNAPSHOTTED";
  readonly disks: readonly DiskSnapshotHandle[];
  readonly pausedAt?: number;
}

/** The memory image is written and the vCPUs run again. */
export interface MemorySavedEvent extends Timed {
  readonly type: "MEMORY_SAVED";
  readonly memory: {
    readonly file: string;
    readonly bytes: number;
    readonly mode?: "Paused" | "Live";
  };
  readonly resumedAt: number;
}

/** Live memory: QEMU captured RAM (write tracking armed) and ran the vCPUs again itself; the
 *  image is still being written. */
export interface MemoryCapturedEvent extends Timed {
  readonly type: "MEMORY_CAPTURED";
}

/** virDomainFSThaw returned. */
export interface ThawedEvent extends Timed {
  readonly type: "THAWED";
}

/** Nothing is left to do but to declare the snapshot ready. */
export interface CompletedEvent extends Timed {
  readonly type: "COMPLETED";
  /** Where the domain's definition was kept with the disk snapshots. */
  readonly definition?: StoredDefinition;
}

/** An effect failed with a typed reason. */
export interface FailedEvent extends Timed {
  readonly type: "FAILED";
  readonly reason: FailureReason;
  readonly message: string;
}

/** Time passed with nothing else to report; lets the machine judge its deadlines. */
export interface TickEvent extends Timed {
  readonly type: "TICK";
}

/**
 * A state read back from status: handled by no state, it only lets the machine settle which
 * step of the recorded phase comes next (its routing is eventless), so that decision is made
 * in the machine and nowhere else.
 */
export interface RehydratedEvent extends Timed {
  readonly type: "REHYDRATED";
}

export type SnapshotEvent =
  | FreezeArmedEvent
  | FrozenEvent
  | UnquiescedEvent
  | DisksSnapshottedEvent
  | MemorySavedEvent
  | MemoryCapturedEvent
  | ThawedEvent
  | CompletedEvent
  | FailedEvent
  | TickEvent
  | RehydratedEvent;
