// The restore's metrics: how restores ended, how long they took, and the one number the restore
// promises — how long a guest restored from a frozen RAM image stayed frozen after it resumed.
import { Counter, Histogram, type Registry } from "prom-client";
import { FROZEN_WINDOW_BUCKETS, PHASE_DURATION_BUCKETS } from "./buckets.ts";
import type { LabelledCounter, PlainHistogram } from "./typed.ts";

export interface RestoreOutcomeLabels {
  result: "succeeded" | "failed";
  /** `Succeeded`, or the typed failure reason (`TargetRunning`, `ThawFailed`, ...). */
  reason: string;
}

export interface RestoreMetrics {
  /** `vmsnap_restores_total{result,reason}`: restores that reached Succeeded or Failed. */
  readonly restoresTotal: LabelledCounter<RestoreOutcomeLabels>;
  /** `vmsnap_restore_duration_seconds`: start to Succeeded. */
  readonly restoreDurationSeconds: PlainHistogram;
  /** `vmsnap_restore_resume_to_thaw_seconds`: vCPUs resumed to the agent confirming the thaw. */
  readonly restoreResumeToThawSeconds: PlainHistogram;
}

export function registerRestoreMetrics(registry: Registry): RestoreMetrics {
  const registers = [registry];
  return {
    restoresTotal: new Counter({
      name: "vmsnap_restores_total",
      help: "Restores that finished, by result (succeeded, failed) and reason",
      labelNames: ["result", "reason"] as const,
      registers,
    }),
    restoreDurationSeconds: new Histogram({
      name: "vmsnap_restore_duration_seconds",
      help: "Time from the start of a restore to Succeeded, in seconds",
      buckets: [...PHASE_DURATION_BUCKETS],
      registers,
    }),
    restoreResumeToThawSeconds: new Histogram({
      name: "vmsnap_restore_resume_to_thaw_seconds",
      help: "How long a guest restored from a frozen RAM image stayed frozen after its vCPUs resumed, in seconds",
      buckets: [...FROZEN_WINDOW_BUCKETS],
      registers,
    }),
  };
}
