// When a schedule runs: from the schedule, the instants already decided and the clock, the run due
// now (only the newest instant that passed: never a burst after an outage), how many instants
// were missed, the next fire time and how long to sleep until it. Pure: the clock is an input.
import type { CronSchedule } from "./cron.ts";

/** Missed instants are counted one by one up to this many per decision; past it, "at least". */
export const MAX_COUNTED_MISSED = 100;

export interface RunInputs {
  schedule: CronSchedule;
  /**
   * Instants at or before this were decided already (status.lastConsideredTime; for a new
   * schedule its creation time, so a schedule never fires for instants before it existed).
   */
  since: Date;
  /** A run whose instant is older than this when it could start is missed, not run late. */
  startingDeadlineMs?: number;
  suspend: boolean;
  now: Date;
}

export interface RunDecision {
  /** The instant to run now, if any: the newest one in (since, now], when not too late. */
  due?: Date;
  /** The newest instant in (since, now], when it was later than startingDeadline allows. */
  tooLate?: Date;
  /** Instants in (since, now] that will never run: all but `due`. */
  missed: number;
  /** True when `missed` stopped counting at MAX_COUNTED_MISSED. */
  missedAtLeast: boolean;
  /** The new `since`: the newest instant in (since, now]; undefined when none passed. */
  considered?: Date;
  /** The next fire time after now; undefined while suspended. */
  next?: Date;
  /** Sleep until `next`; undefined while suspended (a change of spec wakes the schedule). */
  requeueAfterMs?: number;
}

/**
 * Decides which run, if any, is due at `now`.
 *
 * While suspended nothing is decided, so instants that pass stay undecided: when suspend is
 * lifted the newest of them runs at once unless startingDeadline says it is too late, and the
 * others count as missed (Kubernetes CronJob does the same).
 *
 * @example
 * // hourly; the 09:00 run was decided, then the agent was down from 09:10 to 12:20:
 * // one run for 12:00 (late by 20 minutes), 10:00 and 11:00 missed
 * decideRun({ schedule, since: new Date("2026-05-01T09:00:00Z"), suspend: false, now: new Date("2026-05-01T12:20:00Z") })
 * // → { due: 12:00, missed: 2, considered: 12:00, next: 13:00, requeueAfterMs: 2_400_000 }
 */
export function decideRun(inputs: RunInputs): RunDecision {
  const { schedule, since, now } = inputs;
  if (inputs.suspend) return { missed: 0, missedAtLeast: false };

  const next = schedule.nextAfter(now);
  const waiting = {
    ...(next && { next, requeueAfterMs: next.getTime() - now.getTime() }),
  };
  const newest = schedule.latestAtOrBefore(now);
  if (!newest || newest.getTime() <= since.getTime()) {
    return { missed: 0, missedAtLeast: false, ...waiting };
  }

  const { count: older, atLeast } = countBetween(schedule, since, newest);
  const lateness = now.getTime() - newest.getTime();
  const tooLate = inputs.startingDeadlineMs !== undefined && lateness > inputs.startingDeadlineMs;
  if (tooLate) {
    return {
      tooLate: newest,
      missed: older + 1,
      missedAtLeast: atLeast,
      considered: newest,
      ...waiting,
    };
  }
  return { due: newest, missed: older, missedAtLeast: atLeast, considered: newest, ...waiting };
}

/** How many fire times lie strictly between `after` and `before`, counted up to the cap. */
function countBetween(
  schedule: CronSchedule,
  after: Date,
  before: Date,
): { count: number; atLeast: boolean } {
  let count = 0;
  let cursor = schedule.nextAfter(after);
  while (cursor && cursor.getTime() < before.getTime()) {
    if (count === MAX_COUNTED_MISSED) return { count, atLeast: true };
    count++;
    cursor = schedule.nextAfter(cursor);
  }
  return { count, atLeast: false };
}

/**
 * The period the schedule is in at `now`, in ms: from its newest instant at or before `now` to its
 * next one (status.nextScheduleTime); between its next two should croner find none before.
 * Irregular schedules have irregular periods: for `0 2 * * 1-5` it is 3 days from Friday 02:00
 * until Monday 02:00, one day otherwise.
 * @example
 * periodAt(parseSchedule("0 * * * *").schedule, new Date("2026-05-01T09:10:00Z")) // 3_600_000
 */
export function periodAt(schedule: CronSchedule, now: Date): number | undefined {
  const next = schedule.nextAfter(now);
  const from = schedule.latestAtOrBefore(now) ?? next;
  const to = from === next ? next && schedule.nextAfter(next) : next;
  return from && to ? to.getTime() - from.getTime() : undefined;
}
