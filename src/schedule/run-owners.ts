// Which schedule to wake when one of its runs changes. A run going Succeeded or Failed, or being
// deleted, changes its schedule's status (counts, Ready, Forbid, retention, a finalizer waiting
// for its runs to go); the schedule is found from the run's controller owner reference. A deleted
// run is no longer in the cache when its change is announced, so its owner is remembered while
// it is cached.
import type { VMSnapshot } from "../api/types.ts";
import { SCHEDULE_KIND } from "../api/schedule-types.ts";

export class RunOwners {
  /** Run key → its schedule's key, for every cached run a schedule controls. */
  private readonly owners = new Map<string, string>();

  /**
   * The key of the schedule to wake for a change of the VMSnapshot at `key` (`run` is what the
   * cache holds now; undefined once deleted), or undefined when no schedule controls it.
   */
  changed(key: string, run: VMSnapshot | undefined): string | undefined {
    if (!run) {
      const owner = this.owners.get(key);
      this.owners.delete(key);
      return owner;
    }
    const owner = scheduleKeyOf(run);
    if (owner === undefined) this.owners.delete(key);
    else this.owners.set(key, owner);
    return owner;
  }
}

/** `namespace/name` of the schedule that controls `run`, or undefined. */
export function scheduleKeyOf(run: VMSnapshot): string | undefined {
  const ref = (run.metadata.ownerReferences ?? []).find(
    (r) => r.controller === true && r.kind === SCHEDULE_KIND,
  );
  return ref ? `${run.metadata.namespace}/${ref.name}` : undefined;
}
