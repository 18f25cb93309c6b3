// vmsnap's own metrics: what a snapshot cost the guest (frozen window, vCPU downtime), how each
// phase and storage call went, and how snapshots ended. Label values are typed so reasons and
// results stay the small closed sets dashboards and alerts filter on.
import { Counter, Histogram, type Registry } from "prom-client";
import type { StorageBackend } from "../storage/backend.ts";
import {
  DOWNTIME_BUCKETS,
  FROZEN_WINDOW_BUCKETS,
  PHASE_DURATION_BUCKETS,
  STORAGE_OPERATION_BUCKETS,
} from "./buckets.ts";
import type { LabelledCounter, LabelledHistogram, PlainCounter, PlainHistogram } from "./typed.ts";

export type SnapshotResult = "succeeded" | "failed";

export interface SnapshotOutcomeLabels {
  result: SnapshotResult;
  /** The typed reason of the `Ready` condition: e.g. `Succeeded`, or `FreezeTimeout` on failure. */
  reason: string;
}

export interface PhaseLabels {
  /** The phase that was left (`Pending`, `Frozen`, `DisksSnapshotted`, ...). */
  phase: string;
}

export interface LibvirtErrorLabels {
  /** libvirt's numeric `virErrorNumber`, e.g. 42 (VIR_ERR_NO_DOMAIN). */
  code: number | string;
  /** vmsnap's classification of that code, e.g. `DomainNotFound`. */
  reason: string;
}

export type StorageOperation = "create" | "remove" | "rollback";
export type StorageOperationResult = "success" | "error" | "timeout";

export interface StorageOperationLabels {
  backend: StorageBackend["kind"];
  operation: StorageOperation;
  result: StorageOperationResult;
}

export interface SnapshotMetrics {
  /** `vmsnap_guest_frozen_seconds`: freeze to thaw, observed at thaw (the status `freezeDurationMs`). */
  readonly guestFrozenSeconds: PlainHistogram;
  /** `vmsnap_vm_downtime_seconds`: vCPUs paused to resumed (the status `downtimeMs`). */
  readonly vmDowntimeSeconds: PlainHistogram;
  /** `vmsnap_phase_duration_seconds{phase}`: time spent in a phase, observed when it is left. */
  readonly phaseDurationSeconds: LabelledHistogram<PhaseLabels>;
  /** `vmsnap_snapshots_total{result,reason}`: snapshots that reached Succeeded or Failed. */
  readonly snapshotsTotal: LabelledCounter<SnapshotOutcomeLabels>;
  /** `vmsnap_thaw_failures_total`: thaw calls that failed; a guest may still be frozen. */
  readonly thawFailuresTotal: PlainCounter;
  /** `vmsnap_libvirt_errors_total{code,reason}` */
  readonly libvirtErrorsTotal: LabelledCounter<LibvirtErrorLabels>;
  /** `vmsnap_storage_operation_seconds{backend,operation,result}` */
  readonly storageOperationSeconds: LabelledHistogram<StorageOperationLabels>;
}

export function registerSnapshotMetrics(registry: Registry): SnapshotMetrics {
  const registers = [registry];
  return {
    guestFrozenSeconds: new Histogram({
      name: "vmsnap_guest_frozen_seconds",
      help: "How long guest filesystems stayed frozen, from freeze to thaw, in seconds",
      buckets: [...FROZEN_WINDOW_BUCKETS],
      registers,
    }),
    vmDowntimeSeconds: new Histogram({
      name: "vmsnap_vm_downtime_seconds",
      help: "How long guest vCPUs stayed paused for a snapshot, in seconds",
      buckets: [...DOWNTIME_BUCKETS],
      registers,
    }),
    phaseDurationSeconds: new Histogram({
      name: "vmsnap_phase_duration_seconds",
      help: "Time a snapshot spent in each phase, in seconds",
      labelNames: ["phase"] as const,
      buckets: [...PHASE_DURATION_BUCKETS],
      registers,
    }),
    snapshotsTotal: new Counter({
      name: "vmsnap_snapshots_total",
      help: "Snapshots that finished, by result (succeeded, failed) and reason",
      labelNames: ["result", "reason"] as const,
      registers,
    }),
    thawFailuresTotal: new Counter({
      name: "vmsnap_thaw_failures_total",
      help: "Thaw attempts that failed, leaving a guest possibly frozen",
      registers,
    }),
    libvirtErrorsTotal: new Counter({
      name: "vmsnap_libvirt_errors_total",
      help: "libvirt errors, by libvirt error code and vmsnap reason",
      labelNames: ["code", "reason"] as const,
      registers,
    }),
    storageOperationSeconds: new Histogram({
      name: "vmsnap_storage_operation_seconds",
      help: "Duration of storage backend operations, in seconds",
      labelNames: ["backend", "operation", "result"] as const,
      buckets: [...STORAGE_OPERATION_BUCKETS],
      registers,
    }),
  };
}
