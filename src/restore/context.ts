// What the VMRestore machine knows: the spec it works to (input) and what happened so far. All of
// it is recorded in status (src/restore/status.ts), so a restarted agent rebuilds it exactly.
import type {
  Consistency,
  PowerState,
  RestoredDiskStatus,
  RestoreFailureReason,
  ThawedBy,
} from "../api/restore-types.ts";

export interface RestoreInput {
  /** The VMSnapshot restored from, in the restore's namespace. */
  readonly snapshotName: string;
  /** The new domain's name; undefined restores in place. */
  readonly newDomain: string | undefined;
  /** The RAM too when the snapshot has it (spec.memory Restore). */
  readonly memoryWanted: boolean;
  readonly powerState: PowerState;
  /** May a running in-place target be stopped (spec.stopRunningTarget)? */
  readonly stopRunningTarget: boolean;
  /** Longest time from the resume to a confirmed thaw. */
  readonly thawTimeoutMs: number;
  /** The whole restore's budget from startedAt. */
  readonly failureDeadlineMs: number;
  /** Epoch ms when this agent picked the restore up. */
  readonly startedAt: number;
}

export interface RestoreContext extends RestoreInput {
  /** The domain restored to; pinned by validation. */
  readonly targetDomain?: string;
  readonly targetUUID?: string;
  readonly node?: string;
  /** What the snapshot guaranteed: application-consistent when it was quiesced. */
  readonly consistency?: Consistency;
  /** Decided by validation: memory wanted and the snapshot has a memory image. */
  readonly restoresMemory?: boolean;
  /** Validation found the in-place target running and may stop it (never recorded: Pending
   *  re-validates after a restart, and a target this agent stopped is then found stopped). */
  readonly stopFirst?: boolean;
  readonly restoredDisks: readonly RestoredDiskStatus[];
  readonly memoryRestored: boolean;
  /** Written before the resume (write-ahead): the guest is thawed by then whatever happens. */
  readonly thawDeadline?: number;
  readonly resumedAt?: number;
  readonly thawedAt?: number;
  /** Filesystems the thaw found frozen: more than 0 when the RAM image was taken frozen. */
  readonly thawedFilesystems?: number;
  readonly thawedBy?: ThawedBy;
  readonly completedAt?: number;
  readonly error?: { readonly reason: RestoreFailureReason; readonly message: string };
}

/** The restore's whole budget is spent. */
export function restoreDeadlineOf(c: RestoreContext): number {
  return c.startedAt + c.failureDeadlineMs;
}

/** The restored guest runs (resumed from a frozen RAM image) and is not confirmed thawed yet. */
export function awaitingThaw(c: RestoreContext): boolean {
  return c.memoryRestored && c.thawedAt === undefined;
}

/** Past the thaw deadline without a confirmed thaw, or past the whole restore's deadline. */
export function overdueReason(c: RestoreContext, now: number): RestoreFailureReason | undefined {
  if (awaitingThaw(c) && c.thawDeadline !== undefined && now > c.thawDeadline) return "ThawFailed";
  if (now > restoreDeadlineOf(c)) return "DeadlineExceeded";
  return undefined;
}

/** "123 ms after the resume", saying so when the thaw guard (not the agent) thawed it. */
export function thawedAfterResume(c: RestoreContext): string {
  const by = c.thawedBy === "Guard" ? " by the thaw guard (its agent had died)" : "";
  return `${c.thawedAt! - c.resumedAt!} ms after the resume${by}`;
}
