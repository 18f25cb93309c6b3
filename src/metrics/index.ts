// Every metric the vmsnap agent exports, registered into one registry the caller owns. Nothing
// here touches prom-client's global default registry: two controllers (or two tests) in one
// process each get their own, and `/metrics` shows exactly what was registered for it.
import { collectDefaultMetrics, Registry } from "prom-client";
import {
  bindController,
  registerControllerRuntimeMetrics,
  type ControllerMetrics,
  type ControllerRuntimeMetrics,
} from "./controller-runtime.ts";
import { registerFrozenGuests, type FrozenGuests } from "./frozen-guests.ts";
import { registerRestoreMetrics, type RestoreMetrics } from "./restore.ts";
import { registerScheduleMetrics, type ScheduleMetrics } from "./schedule.ts";
import { registerGuardMetrics, type GuardMetrics } from "./guard.ts";
import { registerSnapshotMetrics, type SnapshotMetrics } from "./snapshot.ts";
import {
  bindWorkqueue,
  registerWorkqueueMetrics,
  type WorkqueueMetricSet,
  type WorkqueueMetrics,
} from "./workqueue.ts";

export type { ControllerMetrics, ReconcileResult } from "./controller-runtime.ts";
export type { FrozenGuests } from "./frozen-guests.ts";
export { SCHEDULE_GAUGE_NAMES } from "./schedule.ts";
export type { ScheduleMetrics, ScheduleRunResult } from "./schedule.ts";
export type { GuardMetrics, GuardStateSample, UnconfirmedOutcome } from "./guard.ts";
export type { SnapshotResult, StorageOperation, StorageOperationResult } from "./snapshot.ts";
export type { WorkqueueMetrics } from "./workqueue.ts";
export { MetricsServer, type MetricsServerOptions, type ReadinessCheck } from "./server.ts";

export interface VmsnapMetrics
  extends
    ControllerRuntimeMetrics,
    WorkqueueMetricSet,
    SnapshotMetrics,
    RestoreMetrics,
    ScheduleMetrics {
  readonly registry: Registry;
  /** Backs `vmsnap_guests_frozen` and `vmsnap_longest_frozen_guest_seconds`. */
  readonly frozenGuests: FrozenGuests;
  /** The thaw guard's state as it reports it, and thaws that could not be confirmed. */
  readonly guard: GuardMetrics;
  /** The controller-runtime metrics of `controller`, its series created at zero. */
  forController(controller: string, maxConcurrentReconciles: number): ControllerMetrics;
  /** The metrics of work queue `name`, its series created at zero. */
  forWorkqueue(name: string): WorkqueueMetrics;
}

export interface CreateMetricsOptions {
  /** Wall clock in epoch ms, for the frozen-guest ages; tests pass a fake one. */
  now?: () => number;
  /** Also export prom-client's process and Node.js runtime metrics (default true). */
  defaultMetrics?: boolean;
}

/**
 * Registers every vmsnap metric into `registry` (a fresh one by default).
 *
 * @example
 * const metrics = createMetrics();
 * const controller = metrics.forController("vmsnapshot", 4);
 * controller.reconciled("success");
 * metrics.frozenGuests.frozen("ns/snap-a");
 * metrics.snapshotsTotal.inc({ result: "failed", reason: "FreezeTimeout" });
 */
export function createMetrics(
  registry: Registry = new Registry(),
  options: CreateMetricsOptions = {},
): VmsnapMetrics {
  if (options.defaultMetrics ?? true) collectDefaultMetrics({ register: registry });
  const controllerRuntime = registerControllerRuntimeMetrics(registry);
  const workqueue = registerWorkqueueMetrics(registry);
  return {
    registry,
    ...controllerRuntime,
    ...workqueue,
    ...registerSnapshotMetrics(registry),
    ...registerRestoreMetrics(registry),
    ...registerScheduleMetrics(registry),
    frozenGuests: registerFrozenGuests(registry, options.now ?? Date.now),
    guard: registerGuardMetrics(registry),
    forController: (controller, max) => bindController(controllerRuntime, controller, max),
    forWorkqueue: (name) => bindWorkqueue(workqueue, name),
  };
}
