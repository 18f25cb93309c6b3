// The `controller_runtime_*` metrics, named, labelled and bucketed exactly as controller-runtime's
// (pkg/internal/controller/metrics), so the controller dashboards and alerts people already run
// for Go operators work unchanged on vmsnap.
import { Counter, Gauge, Histogram, type Registry } from "prom-client";
import { RECONCILE_TIME_BUCKETS } from "./buckets.ts";
import type {
  BoundCounter,
  BoundGauge,
  BoundHistogram,
  LabelledCounter,
  LabelledGauge,
  LabelledHistogram,
} from "./typed.ts";

/** How one reconcile ended, as controller-runtime labels it. */
export type ReconcileResult = "success" | "error" | "requeue" | "requeue_after";

export const RECONCILE_RESULTS: readonly ReconcileResult[] = [
  "success",
  "error",
  "requeue",
  "requeue_after",
];

export interface ControllerLabels {
  controller: string;
}

export interface ReconcileLabels extends ControllerLabels {
  result: ReconcileResult;
}

export interface ControllerRuntimeMetrics {
  /** `controller_runtime_reconcile_total{controller,result}` */
  readonly reconcileTotal: LabelledCounter<ReconcileLabels>;
  /** `controller_runtime_reconcile_errors_total{controller}`: every reconcile that returned an error. */
  readonly reconcileErrorsTotal: LabelledCounter<ControllerLabels>;
  /** `controller_runtime_terminal_reconcile_errors_total{controller}`: errors that are not retried. */
  readonly terminalReconcileErrorsTotal: LabelledCounter<ControllerLabels>;
  /** `controller_runtime_reconcile_time_seconds{controller}` */
  readonly reconcileTimeSeconds: LabelledHistogram<ControllerLabels>;
  /** `controller_runtime_active_workers{controller}` */
  readonly activeWorkers: LabelledGauge<ControllerLabels>;
  /** `controller_runtime_max_concurrent_reconciles{controller}` */
  readonly maxConcurrentReconciles: LabelledGauge<ControllerLabels>;
}

/** The controller-runtime metrics of one controller, its label already applied. */
export interface ControllerMetrics {
  /** Counts one finished reconcile under `result`. */
  readonly reconciled: (result: ReconcileResult) => void;
  /** An error returned by the reconciler (counted whether or not it is terminal). */
  readonly reconcileErrors: BoundCounter;
  /** An error the controller will not retry (controller-runtime's `TerminalError`). */
  readonly terminalReconcileErrors: BoundCounter;
  readonly reconcileTime: BoundHistogram;
  readonly activeWorkers: BoundGauge;
}

export function registerControllerRuntimeMetrics(registry: Registry): ControllerRuntimeMetrics {
  const registers = [registry];
  return {
    reconcileTotal: new Counter({
      name: "controller_runtime_reconcile_total",
      help: "Total number of reconciliations per controller",
      labelNames: ["controller", "result"] as const,
      registers,
    }),
    reconcileErrorsTotal: new Counter({
      name: "controller_runtime_reconcile_errors_total",
      help: "Total number of reconciliation errors per controller",
      labelNames: ["controller"] as const,
      registers,
    }),
    terminalReconcileErrorsTotal: new Counter({
      name: "controller_runtime_terminal_reconcile_errors_total",
      help: "Total number of terminal reconciliation errors per controller",
      labelNames: ["controller"] as const,
      registers,
    }),
    reconcileTimeSeconds: new Histogram({
      name: "controller_runtime_reconcile_time_seconds",
      help: "Length of time per reconciliation per controller",
      labelNames: ["controller"] as const,
      buckets: [...RECONCILE_TIME_BUCKETS],
      registers,
    }),
    activeWorkers: new Gauge({
      name: "controller_runtime_active_workers",
      help: "Number of currently used workers per controller",
      labelNames: ["controller"] as const,
      registers,
    }),
    maxConcurrentReconciles: new Gauge({
      name: "controller_runtime_max_concurrent_reconciles",
      help: "Maximum number of concurrent reconciles per controller",
      labelNames: ["controller"] as const,
      registers,
    }),
  };
}

/**
 * Binds the metrics to one controller and, as controller-runtime does when a controller starts,
 * creates every series at zero: `rate()` and `increase()` only see a counter's first increment
 * when the series already existed before it, so an alert on the first error would otherwise miss it.
 *
 * @example
 * const c = bindController(metrics, "vmsnapshot", 4);
 * c.activeWorkers.inc();
 * const started = performance.now();
 * // ... reconcile ...
 * c.reconcileTime.observe((performance.now() - started) / 1000);
 * c.reconciled("requeue_after");
 * c.activeWorkers.dec();
 */
export function bindController(
  m: ControllerRuntimeMetrics,
  controller: string,
  maxConcurrentReconciles: number,
): ControllerMetrics {
  const labels = { controller };
  for (const result of RECONCILE_RESULTS) m.reconcileTotal.inc({ controller, result }, 0);
  m.reconcileErrorsTotal.inc(labels, 0);
  m.terminalReconcileErrorsTotal.inc(labels, 0);
  m.maxConcurrentReconciles.set(labels, maxConcurrentReconciles);
  m.activeWorkers.set(labels, 0);
  return {
    reconciled: (result) => m.reconcileTotal.inc({ controller, result }),
    reconcileErrors: { inc: (value) => m.reconcileErrorsTotal.inc(labels, value) },
    terminalReconcileErrors: { inc: (value) => m.terminalReconcileErrorsTotal.inc(labels, value) },
    reconcileTime: { observe: (seconds) => m.reconcileTimeSeconds.observe(labels, seconds) },
    activeWorkers: {
      set: (value) => m.activeWorkers.set(labels, value),
      inc: (value) => m.activeWorkers.inc(labels, value),
      dec: (value) => m.activeWorkers.dec(labels, value),
    },
  };
}
