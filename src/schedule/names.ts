// Deterministic names for a schedule's runs: the same schedule and instant always give the same
// VMSnapshot name, so an agent restarted between creating a run and recording it finds the run
// already there (AlreadyExists) instead of creating a second one.
import { createHash } from "node:crypto";

/**
 * Names are kept to a DNS-1123 *label* (63 characters), stricter than the 253 an object name may
 * have: such a name also fits a label value, so a run can be selected by name (VMRestore, tools).
 */
export const MAX_NAME_LENGTH = 63;
const STAMP_LENGTH = 12; // yyyymmddhhmm
const HASH_LENGTH = 8;
/** Longest schedule name used as it is: name + "-" + stamp fits. */
const MAX_PLAIN_PREFIX = MAX_NAME_LENGTH - 1 - STAMP_LENGTH;

/**
 * The VMSnapshot name of a schedule's run at `instant`: `<schedule>-<yyyymmddhhmm>`, the minute
 * in UTC (local wall-clock time repeats at a DST fall-back; UTC never does). A schedule name too
 * long to fit is shortened and followed by a hash of the whole name, so two long names that
 * share a beginning still differ.
 * @example runName("db-01", new Date("2026-05-01T12:00:00Z")) // "db-01-202605011200"
 */
export function runName(scheduleName: string, instant: Date): string {
  // A dot is fine in an object name but not in a DNS label: such names are hashed too, so that
  // db.prod and db-prod never share a run name.
  const prefix = scheduleName.includes(".")
    ? hashed(scheduleName, MAX_PLAIN_PREFIX)
    : shortened(scheduleName, MAX_PLAIN_PREFIX);
  return `${prefix}-${utcStamp(instant)}`;
}

/**
 * The value of the vmsnap.io/schedule label on a schedule's runs: the schedule name when it fits
 * a label value (63 characters), else a shortened name with a hash of the whole name.
 */
export function scheduleLabelValue(scheduleName: string): string {
  return shortened(scheduleName, MAX_NAME_LENGTH);
}

function shortened(name: string, max: number): string {
  return name.length <= max ? name : hashed(name, max);
}

/** The beginning of `name` as a DNS label, then a hash of all of it; at most `max` characters. */
function hashed(name: string, max: number): string {
  const hash = createHash("sha256").update(name).digest("hex").slice(0, HASH_LENGTH);
  const prefix = name
    .slice(0, max - 1 - HASH_LENGTH)
    .replace(/\./g, "-")
    .replace(/[^a-z0-9]+$/, "");
  return `${prefix}-${hash}`;
}

function utcStamp(instant: Date): string {
  return instant.toISOString().slice(0, 16).replace(/[-T:]/g, "");
}
