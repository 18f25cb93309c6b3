// What the schedules did: every scheduled instant by what became of it, how late runs started,
// and how many snapshots each schedule holds after retention. Run outcomes (Succeeded, Failed)
// are vmsnap_snapshots_total's: a scheduled run is a VMSnapshot like any other.
import { Counter, Gauge, Histogram, type Registry } from "prom-client";
import { SCHEDULE_LATENESS_BUCKETS } from "./buckets.ts";
import type { LabelledCounter, LabelledGauge, PlainHistogram } from "./typed.ts";

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

export interface ScheduleMetrics {
  /** `vmsnap_schedule_runs_total{result}`: scheduled instants by what became of them. */
  readonly scheduleRunsTotal: LabelledCounter<{ result: ScheduleRunResult }>;
  /** `vmsnap_schedule_run_lateness_seconds`: from the scheduled instant to the run's creation. */
  readonly scheduleRunLatenessSeconds: PlainHistogram;
  /** `vmsnap_schedule_snapshots_retained{namespace,schedule}`: its runs after retention. */
  readonly scheduleSnapshotsRetained: LabelledGauge<ScheduleLabels> & {
    remove(labels: ScheduleLabels): void;
  };
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
    scheduleSnapshotsRetained: new Gauge({
      name: "vmsnap_schedule_snapshots_retained",
      help: "Snapshots a schedule holds after retention (in progress, succeeded and failed)",
      labelNames: ["namespace", "schedule"] as const,
      registers,
    }),
  };
}
