// Which of a schedule's snapshots to keep and which to prune, and why each is kept. Pure.
//
// The rules, as Proxmox Backup Server's prune applies them (Borg's are the same in effect):
// - Only Succeeded snapshots count. Snapshots still in progress are always kept and never count;
//   Failed ones never count and the newest `keepFailed` (default 3) are kept for inspection.
// - keepLast, keepHourly, keepDaily, keepWeekly, keepMonthly are applied in that order, each
//   walking the snapshots newest first. A period rule keeps the newest snapshot of each of the N
//   newest periods (hours, days, ISO weeks from Monday, months; periods without a snapshot do not
//   count) and marks the other snapshots of those periods for pruning.
// - A period that already holds a snapshot kept by an earlier rule is covered: it costs no slot
//   and nothing more is kept in it. So each rule reaches further back than the ones before it
//   (24 hourly + 7 daily keeps the last 24 hours and then 7 older days). restic differs here: its
//   rules are independent, so an hourly snapshot also fills one of the 7 daily slots.
// - Periods are wall-clock periods in the schedule's time zone; the two 02:00 hours of a DST
//   fall-back are one hour, as on the clock.
// - Succeeded snapshots no rule kept are pruned. With no rule set at all, all are kept.
// Snapshots are ordered by their scheduled instant, newest first (name breaks ties).

export const DEFAULT_KEEP_FAILED = 3;

export type RetentionPhase = "InProgress" | "Succeeded" | "Failed";

export interface RetentionCandidate {
  name: string;
  phase: RetentionPhase;
  /** The scheduled instant (the vmsnap.io/scheduled-at annotation). */
  time: Date;
}

export interface RetentionRules {
  keepLast?: number;
  keepHourly?: number;
  keepDaily?: number;
  keepWeekly?: number;
  keepMonthly?: number;
  keepFailed?: number;
}

export type KeepReason =
  | "InProgress"
  | "NoRetentionRules"
  | "KeepLast"
  | "KeepHourly"
  | "KeepDaily"
  | "KeepWeekly"
  | "KeepMonthly"
  | "KeepFailed";

export type PruneReason = "OutsideRetention" | "OlderFailure";

export interface RetentionDecision {
  keep: Array<{ name: string; reason: KeepReason }>;
  prune: Array<{ name: string; reason: PruneReason }>;
}

type Mark = { keep: true; reason: KeepReason } | { keep: false; reason: PruneReason };
type PeriodKey = (snapshot: RetentionCandidate) => string;

/**
 * Applies the retention rules to a schedule's snapshots.
 * @example
 * applyRetention(snapshots, { keepHourly: 24, keepDaily: 7, keepWeekly: 4 }, "Europe/Berlin")
 * // → { keep: [{ name: "db-01-202605011200", reason: "KeepHourly" }, ...], prune: [...] }
 */
export function applyRetention(
  snapshots: readonly RetentionCandidate[],
  rules: RetentionRules,
  timeZone: string,
): RetentionDecision {
  const marks = new Map<string, Mark>();
  const newestFirst = [...snapshots].sort(
    (a, b) => b.time.getTime() - a.time.getTime() || (a.name < b.name ? 1 : -1),
  );
  for (const s of newestFirst.filter((s) => s.phase === "InProgress")) {
    marks.set(s.name, { keep: true, reason: "InProgress" });
  }
  newestFirst
    .filter((s) => s.phase === "Failed")
    .forEach((s, index) => {
      const kept = index < (rules.keepFailed ?? DEFAULT_KEEP_FAILED);
      marks.set(
        s.name,
        kept ? { keep: true, reason: "KeepFailed" } : { keep: false, reason: "OlderFailure" },
      );
    });

  const succeeded = newestFirst.filter((s) => s.phase === "Succeeded");
  const period = periodKeys(timeZone);
  const steps: Array<[number | undefined, KeepReason, PeriodKey]> = [
    [rules.keepLast, "KeepLast", (s) => s.name],
    [rules.keepHourly, "KeepHourly", period.hour],
    [rules.keepDaily, "KeepDaily", period.day],
    [rules.keepWeekly, "KeepWeekly", period.week],
    [rules.keepMonthly, "KeepMonthly", period.month],
  ];
  if (!steps.some(([count]) => (count ?? 0) > 0)) {
    for (const s of succeeded) marks.set(s.name, { keep: true, reason: "NoRetentionRules" });
  }
  for (const [count, reason, key] of steps) {
    if (count !== undefined && count > 0) keepNewestPerPeriod(succeeded, marks, count, reason, key);
  }

  const decision: RetentionDecision = { keep: [], prune: [] };
  for (const s of newestFirst) {
    const mark = marks.get(s.name) ?? { keep: false, reason: "OutsideRetention" };
    if (mark.keep) decision.keep.push({ name: s.name, reason: mark.reason });
    else decision.prune.push({ name: s.name, reason: mark.reason });
  }
  return decision;
}

/** One rule: the newest snapshot of each of the `count` newest periods not yet covered. */
function keepNewestPerPeriod(
  newestFirst: readonly RetentionCandidate[],
  marks: Map<string, Mark>,
  count: number,
  reason: KeepReason,
  key: PeriodKey,
): void {
  const covered = new Set(newestFirst.filter((s) => marks.get(s.name)?.keep).map(key));
  const chosen = new Set<string>();
  for (const s of newestFirst) {
    if (marks.has(s.name)) continue;
    const period = key(s);
    if (covered.has(period)) continue;
    if (chosen.has(period)) {
      marks.set(s.name, { keep: false, reason: "OutsideRetention" });
      continue;
    }
    if (chosen.size === count) break;
    chosen.add(period);
    marks.set(s.name, { keep: true, reason });
  }
}

/** One formatter per time zone: building one costs far more than using it. */
const formatters = new Map<string, Intl.DateTimeFormat>();

function wallClockFormat(timeZone: string): Intl.DateTimeFormat {
  let format = formatters.get(timeZone);
  if (!format) {
    format = new Intl.DateTimeFormat("en-US", {
      timeZone,
      hourCycle: "h23",
      year: "numeric",
      month: "2-digit",
      day: "2-digit",
      hour: "2-digit",
    });
    formatters.set(timeZone, format);
  }
  return format;
}

type Periods = Record<"hour" | "day" | "week" | "month", string>;

/**
 * Periods of instants already read, by time zone and instant: a schedule's snapshots are the same
 * from one reconcile to the next, and reading a wall clock through Intl is the costly part.
 */
const periodCache = new Map<string, Periods>();
const PERIOD_CACHE_SIZE = 50_000;

/** Period keys of a snapshot's time on the wall clock of `timeZone`. */
function periodKeys(timeZone: string): Record<keyof Periods, PeriodKey> {
  const format = wallClockFormat(timeZone);
  const keysOf = (s: RetentionCandidate): Periods => {
    const cacheKey = `${timeZone} ${s.time.getTime()}`;
    let keys = periodCache.get(cacheKey);
    if (!keys) {
      const parts: Record<string, string> = {};
      for (const { type, value } of format.formatToParts(s.time)) parts[type] = value;
      const [year, month, day] = [Number(parts.year), Number(parts.month), Number(parts.day)];
      const date = `${parts.year}-${parts.month}-${parts.day}`;
      keys = {
        hour: `${date}T${parts.hour}`,
        day: date,
        week: isoWeek(year, month, day),
        month: `${parts.year}-${parts.month}`,
      };
      if (periodCache.size >= PERIOD_CACHE_SIZE) periodCache.clear();
      periodCache.set(cacheKey, keys);
    }
    return keys;
  };
  return {
    hour: (s) => keysOf(s).hour,
    day: (s) => keysOf(s).day,
    week: (s) => keysOf(s).week,
    month: (s) => keysOf(s).month,
  };
}

/** The ISO 8601 week of a calendar date, e.g. "2026-W01": weeks from Monday, week 1 holds 4 January. */
export function isoWeek(year: number, month: number, day: number): string {
  const date = Date.UTC(year, month - 1, day);
  const mondayBased = (new Date(date).getUTCDay() + 6) % 7;
  const thursday = new Date(date + (3 - mondayBased) * 86_400_000);
  const weekYear = thursday.getUTCFullYear();
  const week = Math.floor((thursday.getTime() - Date.UTC(weekYear, 0, 1)) / (7 * 86_400_000)) + 1;
  return `${weekYear}-W${String(week).padStart(2, "0")}`;
}
