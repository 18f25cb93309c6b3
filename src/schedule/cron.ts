// A schedule's cron expression read in its time zone: validation with messages that name what to
// fix, the next fire time after an instant and the latest one at or before it. Parsing and the
// calendar arithmetic are croner's (see docs/schedules.md for why croner and how it treats DST);
// this module only narrows croner to standard five-field cron and words the errors.
import { Cron } from "croner";

export const DEFAULT_TIME_ZONE = "UTC";

/** The @-forms accepted, as in Vixie cron and Kubernetes CronJob. */
const MACROS = ["@hourly", "@daily", "@midnight", "@weekly", "@monthly", "@yearly", "@annually"];

/** One cron field: its name in messages, its numeric range and the names it accepts. */
interface FieldRule {
  name: string;
  min: number;
  max: number;
  names?: readonly string[];
}

const FIELDS: readonly FieldRule[] = [
  { name: "minute", min: 0, max: 59 },
  { name: "hour", min: 0, max: 23 },
  { name: "day of month", min: 1, max: 31 },
  {
    name: "month",
    min: 1,
    max: 12,
    names: ["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"],
  },
  {
    name: "day of week",
    min: 0,
    max: 7,
    names: ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"],
  },
];

/** The same character set the CRD's CEL rule allows in a field. */
const FIELD_CHARS = /^[0-9A-Za-z*,/-]+$/;
/** An IANA name's shape: Area/Location[/Sub], or a bare name such as UTC. */
const TIME_ZONE_SHAPE = /^[A-Za-z][A-Za-z0-9_+-]*(\/[A-Za-z0-9_+-]+){0,2}$/;

export interface ScheduleProblem {
  /** The spec field to fix, as the API server would name it. */
  field: "spec.schedule" | "spec.timeZone";
  message: string;
}

/** A validated schedule: fire times are whole minutes of the time zone's wall clock. */
export interface CronSchedule {
  readonly expression: string;
  readonly timeZone: string;
  /** The first fire time strictly after `instant`; undefined when there is none (never happens for a validated schedule within croner's search horizon). */
  nextAfter(instant: Date): Date | undefined;
  /** The newest fire time at or before `instant`. */
  latestAtOrBefore(instant: Date): Date | undefined;
}

export type ParsedSchedule =
  { ok: true; schedule: CronSchedule } | { ok: false; problem: ScheduleProblem };

/**
 * Validates a cron expression and time zone and returns the schedule they define.
 * @example
 * const parsed = parseSchedule("30 2 * * *", "Europe/Berlin");
 * if (parsed.ok) parsed.schedule.nextAfter(new Date("2026-03-28T12:00:00Z")); // 03:00 CEST on 29 March: 02:30 does not exist that day
 */
export function parseSchedule(expression: string, timeZone = DEFAULT_TIME_ZONE): ParsedSchedule {
  // Every reconcile of every schedule parses its spec; the few distinct specs are parsed once.
  const key = `${timeZone} ${expression}`;
  let parsed = parsedCache.get(key);
  if (!parsed) {
    if (parsedCache.size >= PARSED_CACHE_SIZE) parsedCache.clear();
    parsed = parseUncached(expression, timeZone);
    parsedCache.set(key, parsed);
  }
  return parsed;
}

const PARSED_CACHE_SIZE = 1_000;
const parsedCache = new Map<string, ParsedSchedule>();

function parseUncached(expression: string, timeZone: string): ParsedSchedule {
  const zoneProblem = checkTimeZone(timeZone);
  if (zoneProblem) return { ok: false, problem: { field: "spec.timeZone", message: zoneProblem } };
  const cronProblem = checkExpression(expression);
  if (cronProblem) return { ok: false, problem: { field: "spec.schedule", message: cronProblem } };

  let cron: Cron;
  try {
    cron = new Cron(expression.trim(), {
      timezone: timeZone,
      mode: "5-part",
      // Vixie cron's rule: only a minute or hour field with a wildcard or a step makes an
      // "interval" job. Others (including lists such as `30 2,14`) are fixed-time: at a DST
      // change they run once, at the first valid minute when their time does not exist.
      fixedTimeRule: "no-wildcard",
      // Either day field matches when both are restricted, as in Vixie cron and CronJob.
      domAndDow: false,
    });
  } catch (err) {
    const detail = (err as Error).message.replace(/^CronPattern:\s*/, "");
    return { ok: false, problem: { field: "spec.schedule", message: quote(expression, detail) } };
  }
  if (cron.nextRun(new Date(0)) === null) {
    return {
      ok: false,
      problem: {
        field: "spec.schedule",
        message: quote(expression, "never fires: no date matches its day of month and month"),
      },
    };
  }
  return { ok: true, schedule: new CronerSchedule(expression, timeZone, cron) };
}

class CronerSchedule implements CronSchedule {
  constructor(
    readonly expression: string,
    readonly timeZone: string,
    private readonly cron: Cron,
  ) {}

  nextAfter(instant: Date): Date | undefined {
    return this.cron.nextRun(instant) ?? undefined;
  }

  latestAtOrBefore(instant: Date): Date | undefined {
    // croner's previousRuns includes a run earlier in the reference's own second but not one at
    // exactly the reference: one millisecond later makes "at" inclusive.
    return this.cron.previousRuns(1, new Date(instant.getTime() + 1))[0];
  }
}

function quote(expression: string, detail: string): string {
  return `${JSON.stringify(expression)} is not a valid schedule: ${detail}`;
}

/** Undefined when the expression is a standard five-field cron or an accepted @-form. */
function checkExpression(expression: string): string | undefined {
  const text = expression.trim();
  if (text === "") return quote(expression, "it is empty; write five fields such as `0 * * * *`");
  if (text.startsWith("@")) {
    if (MACROS.includes(text)) return undefined;
    return quote(expression, `the @-forms accepted are ${MACROS.join(", ")}`);
  }
  const fields = text.split(/\s+/);
  if (fields.length !== 5) {
    return quote(
      expression,
      `it has ${fields.length} field(s); write exactly five: minute hour day-of-month month day-of-week (no seconds, no year)`,
    );
  }
  for (const [index, field] of fields.entries()) {
    const problem = checkField(field, FIELDS[index]!);
    if (problem) return quote(expression, problem);
  }
  return undefined;
}

function checkField(field: string, rule: FieldRule): string | undefined {
  if (!FIELD_CHARS.test(field)) {
    return `the ${rule.name} field ${JSON.stringify(field)} may only use digits, names, *, ',', '-' and '/' (extensions such as ?, L, W and # are not supported)`;
  }
  for (const word of field.match(/[A-Za-z]+/g) ?? []) {
    if (!rule.names?.includes(word.toUpperCase())) {
      const allowed = rule.names ? `; names allowed here: ${rule.names.join(", ")}` : "";
      return `the ${rule.name} field has ${JSON.stringify(word)}, which is not a ${rule.name}${allowed}`;
    }
  }
  for (const part of field.split(",")) {
    const [range, step] = part.split("/");
    if (step !== undefined && !/^[1-9][0-9]*$/.test(step)) {
      return `the ${rule.name} field's step ${JSON.stringify(step)} must be a positive number`;
    }
    if (step !== undefined && !(range === "*" || range!.includes("-"))) {
      return `the ${rule.name} field's step needs a range: write */${step} or ${range}-${rule.max}/${step}, not ${part}`;
    }
    for (const number of range!.match(/[0-9]+/g) ?? []) {
      const value = Number(number);
      if (value < rule.min || value > rule.max) {
        return `the ${rule.name} field has ${value}, outside ${rule.min}-${rule.max}`;
      }
    }
  }
  return undefined;
}

/** Undefined when the time zone is an IANA name this runtime knows, spelled as IANA spells it. */
function checkTimeZone(timeZone: string): string | undefined {
  const name = JSON.stringify(timeZone);
  if (!TIME_ZONE_SHAPE.test(timeZone)) {
    return `${name} is not an IANA time zone name; write one such as UTC or Europe/Berlin`;
  }
  let resolved: string;
  try {
    resolved = new Intl.DateTimeFormat("en-US", { timeZone }).resolvedOptions().timeZone;
  } catch {
    return `${name} is not a known IANA time zone; write one such as UTC or Europe/Berlin`;
  }
  // Intl ignores case, the tz database (and the API server's Go) does not.
  if (resolved !== timeZone && resolved.toLowerCase() === timeZone.toLowerCase()) {
    return `${name} is spelled differently in the IANA database: write ${resolved}`;
  }
  return undefined;
}
