// What the schedules did: every scheduled instant by what became of it, how late runs started,
// and per schedule what it holds after retention and whether it still produces snapshots (the
// facts the "no successful snapshot within two periods" alert compares). Run outcomes (Succeeded,
// Failed) are vmsnap_snapshots_total's: a scheduled run is a VMSnapshot like any other.
import { Counter, Gauge, Histogram, type Registry } from "prom-client";
import { SCHEDULE_LATENESS_BUCKETS } from "./buckets.ts";
import type { LabelledCounter, PlainHistogram } from "./typed.ts";

/**
 * What became of a scheduled instant: `created` (a run was created), `skipped` (a previous run was
 * still in progress, concurrencyPolicy Forbid), `missed` (the agent was down or the run was past
 * startingDeadline), `conflict` (a VMSnapshot of that name belongs to someone else).
 */
export type ScheduleRunResult = "created" | "skipped" | "missed" | "conflict";

export interface ScheduleLabels {
  namespace: string;
  schedule: string;
}

/** One schedule as its gauges show it. */
export interface ScheduleGaugeValues {
  /** Its snapshots after retention: in progress, succeeded and failed. */
  readonly retained: number;
  /** When its newest Succeeded snapshot completed; undefined until one has. */
  readonly lastSuccess: Date | undefined;
  /** metadata.creationTimestamp: where "no success yet" is measured from. */
  readonly created: Date;
  /** The period it is in (newest scheduled time to next); undefined for an invalid spec. */
  readonly intervalSeconds: number | undefined;
  readonly suspended: boolean;
}

/** The per-schedule series: set as a whole, removed as a whole. */
export interface ScheduleGauges {
  /** Sets every series of the schedule; an undefined value removes that one series. */
  set(labels: ScheduleLabels, values: ScheduleGaugeValues): void;
  /** Removes every series of the schedule: it was deleted, or it moved to another node's agent. */
  remove(labels: ScheduleLabels): void;
}

/** The per-schedule series, each labelled `{namespace,schedule}`. */
export const SCHEDULE_GAUGE_NAMES = {
  retained: "vmsnap_schedule_snapshots_retained",
  lastSuccess: "vmsnap_schedule_last_success_timestamp_seconds",
  created: "vmsnap_schedule_created_timestamp_seconds",
  interval: "vmsnap_schedule_interval_seconds",
  suspended: "vmsnap_schedule_suspended",
} as const;

export interface ScheduleMetrics {
  /** `vmsnap_schedule_runs_total{result}`: scheduled instants by what became of them. */
  readonly scheduleRunsTotal: LabelledCounter<{ result: ScheduleRunResult }>;
  /** `vmsnap_schedule_run_lateness_seconds`: from the scheduled instant to the run's creation. */
  readonly scheduleRunLatenessSeconds: PlainHistogram;
  /** The SCHEDULE_GAUGE_NAMES series. */
  readonly scheduleGauges: ScheduleGauges;
}

export function registerScheduleMetrics(registry: Registry): ScheduleMetrics {
  const registers = [registry];
  const runs = new Counter({
    name: "vmsnap_schedule_runs_total",
    help: "Scheduled instants by what became of them (created, skipped, missed, conflict)",
    labelNames: ["result"] as const,
    registers,
  });
  // Created at zero, so `increase()` and alerts see a series before the first run or miss.
  for (const result of ["created", "skipped", "missed", "conflict"] as const)
    runs.inc({ result }, 0);
  return {
    scheduleRunsTotal: runs,
    scheduleRunLatenessSeconds: new Histogram({
      name: "vmsnap_schedule_run_lateness_seconds",
      help: "Seconds from a scheduled instant to the creation of its run",
      buckets: [...SCHEDULE_LATENESS_BUCKETS],
      registers,
    }),
    scheduleGauges: registerScheduleGauges(registers),
  };
}

function registerScheduleGauges(registers: Registry[]): ScheduleGauges {
  const gauge = (name: string, help: string) =>
    new Gauge({ name, help, labelNames: ["namespace", "schedule"] as const, registers });
  const retained = gauge(
    SCHEDULE_GAUGE_NAMES.retained,
    "Snapshots a schedule holds after retention (in progress, succeeded and failed)",
  );
  const lastSuccess = gauge(
    SCHEDULE_GAUGE_NAMES.lastSuccess,
    "When the schedule's newest Succeeded snapshot completed (Unix seconds); absent until one has",
  );
  const created = gauge(
    SCHEDULE_GAUGE_NAMES.created,
    "When the schedule was created (Unix seconds)",
  );
  const interval = gauge(
    SCHEDULE_GAUGE_NAMES.interval,
    "The period the schedule is in: seconds from its newest scheduled time to its next",
  );
  const suspended = gauge(
    SCHEDULE_GAUGE_NAMES.suspended,
    "1 while the schedule is suspended (spec.suspend), else 0",
  );
  const all = [retained, lastSuccess, created, interval, suspended];
  const put = (g: Gauge<"namespace" | "schedule">, labels: ScheduleLabels, v?: number) =>
    v === undefined ? g.remove(labels) : g.set(labels, v);
  return {
    set(labels, values) {
      put(retained, labels, values.retained);
      put(lastSuccess, labels, values.lastSuccess && values.lastSuccess.getTime() / 1000);
      put(created, labels, values.created.getTime() / 1000);
      put(interval, labels, values.intervalSeconds);
      put(suspended, labels, values.suspended ? 1 : 0);
    },
    remove(labels) {
      for (const g of all) g.remove(labels);
    },
  };
}
