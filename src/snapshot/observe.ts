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
import { thawConfirmed, type ThawOutcome } from "../hypervisor/thaw.ts";

/** Guard reports kept for snapshots that have not failed yet; bounded, since a report may name
 *  an attempt that never reaches Failed here (another process's, one deleted meanwhile). */
const MAX_GUARD_REPORTS = 1_024;

export class MetricsObserver implements TransitionObserver<VMSnapshot, MachineState> {
  /** When each in-flight snapshot entered its current phase (this process's view). */
  private readonly enteredAt = new Map<string, number>();
  /** Failed attempts whose guest may still be frozen: their key, by VMSnapshot UID, until the
   *  guard reports how its thaw ended. */
  private readonly awaitingGuard = new Map<string, string>();
  /** Guard reports that came before their attempt failed, by UID. */
  private readonly guardReports = new Map<string, ThawOutcome>();

  constructor(private readonly metrics: VmsnapMetrics) {}

  /**
   * The thaw guard fired an entry and its thaw ended. Confirmed or not, the guest is no longer
   * counted frozen (a lost domain's state is unknown, and is counted as such instead).
   */
  guardFired(report: { id: string; outcome: ThawOutcome }): void {
    if (!thawConfirmed(report.outcome))
      this.metrics.guard.thawUnconfirmed(report.outcome === "lost" ? "lost" : "failed");
    const key = this.awaitingGuard.get(report.id);
    if (key !== undefined) {
      this.awaitingGuard.delete(report.id);
      this.metrics.frozenGuests.thawed(key);
      return;
    }
    this.guardReports.set(report.id, report.outcome);
    if (this.guardReports.size > MAX_GUARD_REPORTS)
      this.guardReports.delete(this.guardReports.keys().next().value!);
  }

  /** The agent itself confirmed a failed attempt's guest thawed: no longer counted frozen. */
  thawConfirmed(snapshot: VMSnapshot): void {
    const uid = snapshot.metadata.uid!;
    const key = this.awaitingGuard.get(uid) ?? keyOf(snapshot);
    this.awaitingGuard.delete(uid);
    this.metrics.frozenGuests.thawed(key);
  }

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
      const uid = snapshot.metadata.uid!;
      // Frozen and no thaw seen: the guest stays counted frozen until the guard, which stays
      // armed, reports how its thaw ended (so the frozen-too-long alert can still fire).
      if (c.frozenAt !== undefined && c.thawedAt === undefined && !this.guardReports.has(uid))
        this.awaitingGuard.set(uid, key);
      else this.metrics.frozenGuests.thawed(key);
      this.guardReports.delete(uid);
      this.metrics.snapshotsTotal.inc({ result: "failed", reason: c.error!.reason });
      this.enteredAt.delete(key);
    }
    if (to.phase === "Succeeded") {
      this.guardReports.delete(snapshot.metadata.uid!);
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
