// What the restores did, as metrics: results by reason, duration, resume-to-thaw. Only reads.
import type { VMRestore } from "../api/restore-types.ts";
import type { TransitionObserver } from "../controller/reconciler.ts";
import type { RestoreMetrics } from "../metrics/restore.ts";
import type { RestoreState } from "./step.ts";

export class RestoreMetricsObserver implements TransitionObserver<VMRestore, RestoreState> {
  constructor(private readonly metrics: RestoreMetrics) {}

  transition(_restore: VMRestore, from: RestoreState, to: RestoreState): void {
    const c = to.context;
    if (to.phase === "Thawed" && from.phase !== "Thawed" && c.resumedAt !== undefined) {
      this.metrics.restoreResumeToThawSeconds.observe((c.thawedAt! - c.resumedAt) / 1000);
    }
    if (to.phase === "Succeeded") {
      this.metrics.restoresTotal.inc({ result: "succeeded", reason: "Succeeded" });
      this.metrics.restoreDurationSeconds.observe((c.completedAt! - c.startedAt) / 1000);
    }
    if (to.phase === "Failed") {
      this.metrics.restoresTotal.inc({ result: "failed", reason: c.error!.reason });
    }
  }
}
