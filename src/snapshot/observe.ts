// Turns what the reconciler and effects see into vmsnap's metrics: the frozen window, VM
// downtime, time per phase, results by reason, guests frozen now, libvirt errors by code and
// storage latency. Only reads what happened; never influences it.
import type { VMSnapshot } from "../api/types.ts";
import { HypervisorError } from "../hypervisor/errors.ts";
import type { VmsnapMetrics } from "../metrics/index.ts";
import type { MachineState } from "../machine/step.ts";
import type { StorageBackend } from "../storage/backend.ts";
import { keyOf } from "./effects.ts";
import type { TransitionObserver } from "../controller/reconciler.ts";

export class MetricsObserver implements TransitionObserver<VMSnapshot, MachineState> {
  /** When each in-flight snapshot entered its current phase (this process's view). */
  private readonly enteredAt = new Map<string, number>();

  constructor(private readonly metrics: VmsnapMetrics) {}

  transition(snapshot: VMSnapshot, from: MachineState, to: MachineState): void {
    const key = keyOf(snapshot);
    const c = to.context;
    const at = c.completedAt ?? c.thawedAt ?? Date.now();
    const since = this.enteredAt.get(key) ?? from.context.startedAt;
    this.metrics.phaseDurationSeconds.observe(
      { phase: from.phase },
      Math.max(0, at - since) / 1000,
    );
    this.enteredAt.set(key, at);

    if (to.phase === "Frozen") this.metrics.frozenGuests.frozen(key, c.frozenAt);
    if (
      c.frozenAt !== undefined &&
      c.thawedAt !== undefined &&
      from.context.thawedAt === undefined
    ) {
      this.metrics.frozenGuests.thawed(key);
      this.metrics.guestFrozenSeconds.observe((c.thawedAt - c.frozenAt) / 1000);
    }
    if (to.phase === "MemorySaved" && c.pausedAt !== undefined && c.resumedAt !== undefined) {
      this.metrics.vmDowntimeSeconds.observe((c.resumedAt - c.pausedAt) / 1000);
    }
    if (to.phase === "Failed") {
      // A failure's compensation thawed the guest (or the guard will): it is no longer ours.
      this.metrics.frozenGuests.thawed(key);
      this.metrics.snapshotsTotal.inc({ result: "failed", reason: c.error!.reason });
      this.enteredAt.delete(key);
    }
    if (to.phase === "Succeeded") {
      this.metrics.snapshotsTotal.inc({ result: "succeeded", reason: "Succeeded" });
      this.enteredAt.delete(key);
    }
  }

  /** Every libvirt error an effect met, by its numeric code and typed reason. */
  error(err: unknown): void {
    if (err instanceof HypervisorError) {
      this.metrics.libvirtErrorsTotal.inc({ code: err.code, reason: err.reason });
      if (err.operation === "fsThaw") this.metrics.thawFailuresTotal.inc();
    }
  }
}

/** A backend whose every operation is timed into vmsnap_storage_operation_seconds. */
export function timedBackend<B extends StorageBackend>(backend: B, metrics: VmsnapMetrics): B {
  const timed =
    (operation: "create" | "remove" | "rollback") =>
    async (...args: Parameters<B[typeof operation]>) => {
      const started = performance.now();
      let result: "success" | "error" | "timeout" = "success";
      try {
        return await (backend[operation] as (...a: unknown[]) => Promise<unknown>).apply(
          backend,
          args,
        );
      } catch (err) {
        result = (err as { reason?: string }).reason === "StorageTimeout" ? "timeout" : "error";
        throw err;
      } finally {
        if ((args[0] as { disks: readonly unknown[] }).disks.length > 0) {
          metrics.storageOperationSeconds.observe(
            { backend: backend.kind, operation, result },
            (performance.now() - started) / 1000,
          );
        }
      }
    };
  return Object.assign(Object.create(backend) as B, {
    create: timed("create"),
    remove: timed("remove"),
    rollback: timed("rollback"),
  });
}
