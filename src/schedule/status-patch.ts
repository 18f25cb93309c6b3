// The JSON merge patch that turns a schedule's recorded status into the one planSchedule wants.
// A merge patch keeps every field it does not mention, so a field the plan dropped (such as
// nextScheduleTime while suspended) must be sent as null to be removed.
import type { VMSnapshotScheduleStatus } from "../api/schedule-types.ts";

/**
 * The status part of a merge patch from `before` to `after`, or undefined when nothing changes
 * (so a reconcile that changes nothing writes nothing).
 * @example
 * statusMergePatch({ nextScheduleTime: "…", missedRuns: 1 }, { missedRuns: 1 })
 * // → { nextScheduleTime: null, missedRuns: 1 }
 */
export function statusMergePatch(
  before: VMSnapshotScheduleStatus | undefined,
  after: VMSnapshotScheduleStatus,
): Record<string, unknown> | undefined {
  const patch: Record<string, unknown> = { ...after };
  for (const key of Object.keys(before ?? {})) {
    if (!(key in after)) patch[key] = null;
  }
  return canonical(before ?? {}) === canonical(after) ? undefined : patch;
}

/** JSON with keys sorted, so equal statuses compare equal whatever order they were built in. */
function canonical(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) =>
    v && typeof v === "object" && !Array.isArray(v)
      ? Object.fromEntries(Object.entries(v).sort(([a], [b]) => (a < b ? -1 : 1)))
      : v,
  );
}
