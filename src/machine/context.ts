// The phase machine's context: the spec's choices plus what has happened so far. Everything here
// round-trips through VMSnapshot status (see controller/status.ts), so a restarted controller
// rebuilds exactly the context the previous one had.
import type { FailureReason, UnquiescedReason } from "../api/reasons.ts";
import type { QuiescePolicy } from "../api/types.ts";
import type { DiskSnapshotHandle } from "../storage/backend.ts";

export interface SnapshotContext {
  // --- from spec ---
  readonly memory: boolean;
  readonly quiesce: QuiescePolicy;
  readonly freezeTimeoutMs: number;
  readonly failureDeadlineMs: number;
  // --- what happened (epoch ms) ---
  readonly startedAt: number;
  /** Written before freezing (write-ahead): a guest may be frozen until this instant at most. */
  readonly freezeDeadline?: number;
  readonly frozenAt?: number;
  readonly thawedAt?: number;
  readonly pausedAt?: number;
  readonly resumedAt?: number;
  /** undefined until decided; false with a reason when the snapshot is taken without a freeze. */
  readonly quiesced?: boolean;
  readonly unquiesced?: { readonly reason: UnquiescedReason; readonly message: string };
  readonly disks: readonly DiskSnapshotHandle[];
  readonly memoryImage?: { readonly file: string; readonly bytes: number };
  readonly completedAt?: number;
  readonly error?: { readonly reason: FailureReason; readonly message: string };
}

/** The spec's choices and the start time: all a new snapshot's machine needs. */
export interface SnapshotInput {
  readonly memory: boolean;
  readonly quiesce: QuiescePolicy;
  readonly freezeTimeoutMs: number;
  readonly failureDeadlineMs: number;
  readonly startedAt: number;
}

/** True while the guest may be frozen by us: a freeze was armed and no thaw has been seen. */
export function mayBeFrozen(context: SnapshotContext): boolean {
  return context.freezeDeadline !== undefined && context.thawedAt === undefined;
}

/** True while the vCPUs may be paused by us. */
export function mayBePaused(context: SnapshotContext): boolean {
  return context.pausedAt !== undefined && context.resumedAt === undefined;
}
