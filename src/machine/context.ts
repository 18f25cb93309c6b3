// The phase machine's context: the spec's choices plus what has happened so far. Everything here
// round-trips through VMSnapshot status (see snapshot/status.ts), so a restarted controller
// rebuilds exactly the context the previous one had.
//
// The predicates below are the only definitions of "frozen by us", "paused by us" and of the
// two deadlines: the machine's guards, the effects, the loop and the start-up recovery all ask
// them, so no two places can disagree.
import { UnquiescedReason, type FailureReason } from "../api/reasons.ts";
import type { MemoryMode, QuiescePolicy } from "../api/types.ts";
import type { DiskSnapshotHandle, StoredDefinition } from "../storage/backend.ts";

export interface SnapshotContext {
  // --- from spec ---
  readonly memory: boolean;
  readonly memoryMode: MemoryMode;
  readonly quiesce: QuiescePolicy;
  readonly freezeTimeoutMs: number;
  readonly failureDeadlineMs: number;
  // --- what happened (epoch ms) ---
  readonly startedAt: number;
  /** Written before freezing (write-ahead): a guest may be frozen until this instant at most. */
  readonly freezeDeadline?: number;
  /** The domain's UUID at the first look-up, recorded with the freeze deadline: every thaw of
   *  this attempt, a restarted agent's included, is of that domain, never a same-named one. */
  readonly domainUUID?: string;
  readonly frozenAt?: number;
  readonly thawedAt?: number;
  readonly pausedAt?: number;
  readonly resumedAt?: number;
  /** undefined until decided; false with a reason when the snapshot is taken without a freeze. */
  readonly quiesced?: boolean;
  readonly unquiesced?: { readonly reason: UnquiescedReason; readonly message: string };
  readonly disks: readonly DiskSnapshotHandle[];
  readonly memoryImage?: {
    readonly file: string;
    readonly bytes: number;
    readonly mode?: MemoryMode;
  };
  /** Live memory: when QEMU captured RAM (the image is written after, while the guest runs). */
  readonly memoryCapturedAt?: number;
  /** Where the domain's definition (inactive XML at the snapshot) was kept with the disks. */
  readonly definition?: StoredDefinition;
  readonly completedAt?: number;
  readonly error?: { readonly reason: FailureReason; readonly message: string };
  /** Set when no thaw could be confirmed after a freeze (libvirtd unreachable, the domain not
   *  found: migrated or redefined while frozen): why. thawedAt is then never claimed. */
  readonly thawUnconfirmed?: string;
}

/** The spec's choices and the start time: all a new snapshot's machine needs. */
export interface SnapshotInput {
  readonly memory: boolean;
  readonly memoryMode: MemoryMode;
  readonly quiesce: QuiescePolicy;
  readonly freezeTimeoutMs: number;
  readonly failureDeadlineMs: number;
  readonly startedAt: number;
}

/**
 * True while the guest may be frozen by this attempt: a freeze was armed (its deadline written
 * ahead) and no thaw has been seen. A freeze that failed or timed out counts: it may land late.
 */
export function mayBeFrozen(context: SnapshotContext): boolean {
  return context.freezeDeadline !== undefined && context.thawedAt === undefined;
}

/** True once the freeze is known to have happened and no thaw has been seen since. */
export function frozenByUs(context: SnapshotContext): boolean {
  return context.frozenAt !== undefined && mayBeFrozen(context);
}

/**
 * May this attempt have paused the vCPUs, and not resumed them yet? Only a VM snapshot of a
 * domain that was running when inspected can have been paused by us (an administrator's pause
 * is never ours to undo).
 */
export function mayHavePaused(context: SnapshotContext): boolean {
  if (!context.memory || context.resumedAt !== undefined) return false;
  if (context.freezeDeadline !== undefined) return true;
  const reason = context.unquiesced?.reason;
  return (
    reason !== undefined &&
    reason !== UnquiescedReason.DomainPaused &&
    reason !== UnquiescedReason.DomainOffline
  );
}

/** The guest is frozen or its vCPUs paused by this attempt: every moment counts. */
export function inFrozenWindow(context: SnapshotContext): boolean {
  return frozenByUs(context) || (context.pausedAt !== undefined && context.resumedAt === undefined);
}

/** When the whole attempt must be over (spec.failureDeadline after it started). */
export function failureDeadlineOf(context: SnapshotContext): number {
  return context.startedAt + context.failureDeadlineMs;
}

/** Which deadline, if any, has passed at `at`: the freeze window first, it is the tighter. */
export function passedDeadline(
  context: SnapshotContext,
  at: number,
): "freezeTimeout" | "failureDeadline" | undefined {
  if (frozenByUs(context) && at > context.freezeDeadline!) return "freezeTimeout";
  if (at > failureDeadlineOf(context)) return "failureDeadline";
  return undefined;
}

/**
 * The deadline the current step's calls must finish by: the freeze deadline while frozen (the
 * guard thaws then), else the failure deadline.
 */
export function stepDeadlineOf(context: SnapshotContext): number {
  return frozenByUs(context) ? context.freezeDeadline! : failureDeadlineOf(context);
}

/**
 * Is RAM saved live (captured at the pause, written while the guest runs)? Only for a guest this
 * attempt pauses: QEMU 7.2 runs the vCPUs once it has armed the capture, so a domain someone else
 * paused (and a shut-off one, which has no RAM) is saved the paused way.
 */
export function savesMemoryLive(context: SnapshotContext): boolean {
  const reason = context.unquiesced?.reason;
  return (
    context.memory &&
    context.memoryMode === "Live" &&
    reason !== UnquiescedReason.DomainPaused &&
    reason !== UnquiescedReason.DomainOffline
  );
}
