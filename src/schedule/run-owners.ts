// Which schedule to wake when one of its runs changes. A run appearing, going Succeeded or
// Failed, starting its deletion, or being deleted changes its schedule's status (counts, Ready,
// Forbid, retention, a finalizer waiting for its runs to go); the schedule is found from the
// run's controller owner reference. The steps in between (Frozen, DisksSnapshotted, ...) change
// nothing a schedule shows, so they wake nothing: measured with 1,000 runs, every run woke its
// schedule ~8 times before. A deleted run is no longer in the cache when its change is
// announced, so its owner is remembered while it is cached.
import type { VMSnapshot } from "../api/types.ts";
import { SCHEDULE_KIND } from "../api/schedule-types.ts";

interface Seen {
  readonly owner: string;
  /** What of the run its schedule looks at: its bucket and whether it is being deleted. */
  readonly signature: string;
}

export class RunOwners {
  /** Run key → its schedule's key and what the schedule last saw of it. */
  private readonly seen = new Map<string, Seen>();

  /**
   * The key of the schedule to wake for a change of the VMSnapshot at `key` (`run` is what the
   * cache holds now; undefined once deleted), or undefined when no schedule controls it or the
   * change is nothing its schedule shows.
   */
  changed(key: string, run: VMSnapshot | undefined): string | undefined {
    const before = this.seen.get(key);
    if (!run) {
      this.seen.delete(key);
      return before?.owner;
    }
    const owner = scheduleKeyOf(run);
    if (owner === undefined) {
      this.seen.delete(key);
      return undefined;
    }
    const signature = signatureOf(run);
    this.seen.set(key, { owner, signature });
    return before?.owner === owner && before.signature === signature ? undefined : owner;
  }
}

/** The bucket a schedule counts the run in, and whether its deletion has begun. */
function signatureOf(run: VMSnapshot): string {
  const phase = run.status?.phase;
  const bucket = phase === "Succeeded" || phase === "Failed" ? phase : "InProgress";
  return `${bucket}${run.metadata.deletionTimestamp ? "|deleting" : ""}`;
}

/** `namespace/name` of the schedule that controls `run`, or undefined. */
export function scheduleKeyOf(run: VMSnapshot): string | undefined {
  const ref = (run.metadata.ownerReferences ?? []).find(
    (r) => r.controller === true && r.kind === SCHEDULE_KIND,
  );
  return ref ? `${run.metadata.namespace}/${ref.name}` : undefined;
}
