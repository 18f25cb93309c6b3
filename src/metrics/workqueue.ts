// The `workqueue_*` metrics, as client-go's work queue reports them through controller-runtime:
// the same names, the `{name, controller}` labels (both carry the controller's name), and the
// 10 ns … 1000 s buckets. `bindWorkqueue` hands a queue the per-queue handles client-go's
// MetricsProvider would, so the queue implementation never sees label names.
// Recent controller-runtime also puts a `priority` label on `workqueue_depth`, empty unless its
// priority queue is used; Prometheus drops empty labels, so omitting it yields identical series.
import { Counter, Gauge, Histogram, type Registry } from "prom-client";
import { WORKQUEUE_DURATION_BUCKETS } from "./buckets.ts";
import type {
  BoundCounter,
  BoundGauge,
  BoundHistogram,
  LabelledCounter,
  LabelledGauge,
  LabelledHistogram,
} from "./typed.ts";

export interface QueueLabels {
  name: string;
  controller: string;
}

export interface WorkqueueMetricSet {
  /** `workqueue_depth{name,controller}`: items waiting, not counting those being processed. */
  readonly workqueueDepth: LabelledGauge<QueueLabels>;
  /** `workqueue_adds_total{name,controller}` */
  readonly workqueueAddsTotal: LabelledCounter<QueueLabels>;
  /** `workqueue_queue_duration_seconds{name,controller}`: from add to being handed to a worker. */
  readonly workqueueQueueDurationSeconds: LabelledHistogram<QueueLabels>;
  /** `workqueue_work_duration_seconds{name,controller}`: from handed out to `done`. */
  readonly workqueueWorkDurationSeconds: LabelledHistogram<QueueLabels>;
  /** `workqueue_unfinished_work_seconds{name,controller}` */
  readonly workqueueUnfinishedWorkSeconds: LabelledGauge<QueueLabels>;
  /** `workqueue_longest_running_processor_seconds{name,controller}` */
  readonly workqueueLongestRunningProcessorSeconds: LabelledGauge<QueueLabels>;
  /** `workqueue_retries_total{name,controller}`: adds with a delay (rate-limited or requeue-after). */
  readonly workqueueRetriesTotal: LabelledCounter<QueueLabels>;
}

/** One queue's metrics, its labels already applied. */
export interface WorkqueueMetrics {
  readonly depth: BoundGauge;
  readonly adds: BoundCounter;
  readonly queueDuration: BoundHistogram;
  readonly workDuration: BoundHistogram;
  /** Set periodically (client-go: every 500 ms) to the summed age of items being processed. */
  readonly unfinishedWorkSeconds: Pick<BoundGauge, "set">;
  /** Set periodically to the age of the oldest item being processed. */
  readonly longestRunningProcessorSeconds: Pick<BoundGauge, "set">;
  readonly retries: BoundCounter;
}

export function registerWorkqueueMetrics(registry: Registry): WorkqueueMetricSet {
  const registers = [registry];
  const labelNames = ["name", "controller"] as const;
  return {
    workqueueDepth: new Gauge({
      name: "workqueue_depth",
      help: "Current depth of workqueue",
      labelNames,
      registers,
    }),
    workqueueAddsTotal: new Counter({
      name: "workqueue_adds_total",
      help: "Total number of adds handled by workqueue",
      labelNames,
      registers,
    }),
    workqueueQueueDurationSeconds: new Histogram({
      name: "workqueue_queue_duration_seconds",
      help: "How long in seconds an item stays in workqueue before being requested",
      labelNames,
      buckets: [...WORKQUEUE_DURATION_BUCKETS],
      registers,
    }),
    workqueueWorkDurationSeconds: new Histogram({
      name: "workqueue_work_duration_seconds",
      help: "How long in seconds processing an item from workqueue takes.",
      labelNames,
      buckets: [...WORKQUEUE_DURATION_BUCKETS],
      registers,
    }),
    workqueueUnfinishedWorkSeconds: new Gauge({
      name: "workqueue_unfinished_work_seconds",
      help:
        "How many seconds of work has been done that is in progress and hasn't been observed by " +
        "work_duration. Large values indicate stuck threads. One can deduce the number of stuck " +
        "threads by observing the rate at which this increases.",
      labelNames,
      registers,
    }),
    workqueueLongestRunningProcessorSeconds: new Gauge({
      name: "workqueue_longest_running_processor_seconds",
      help: "How many seconds has the longest running processor for workqueue been running.",
      labelNames,
      registers,
    }),
    workqueueRetriesTotal: new Counter({
      name: "workqueue_retries_total",
      help: "Total number of items added to the workqueue with a delay (rate-limited retries, requeue-after)",
      labelNames,
      registers,
    }),
  };
}

/**
 * Binds the metrics to the queue `name` and creates its series at zero, as client-go does when a
 * queue is made. controller-runtime names a controller's queue after the controller, so both
 * labels carry `name`.
 *
 * @example
 * const q = bindWorkqueue(metrics, "vmsnapshot");
 * q.adds.inc(); q.depth.inc();
 */
export function bindWorkqueue(m: WorkqueueMetricSet, name: string): WorkqueueMetrics {
  const labels = { name, controller: name };
  m.workqueueDepth.set(labels, 0);
  m.workqueueAddsTotal.inc(labels, 0);
  m.workqueueRetriesTotal.inc(labels, 0);
  m.workqueueUnfinishedWorkSeconds.set(labels, 0);
  m.workqueueLongestRunningProcessorSeconds.set(labels, 0);
  return {
    depth: {
      set: (value) => m.workqueueDepth.set(labels, value),
      inc: (value) => m.workqueueDepth.inc(labels, value),
      dec: (value) => m.workqueueDepth.dec(labels, value),
    },
    adds: { inc: (value) => m.workqueueAddsTotal.inc(labels, value) },
    queueDuration: {
      observe: (seconds) => m.workqueueQueueDurationSeconds.observe(labels, seconds),
    },
    workDuration: {
      observe: (seconds) => m.workqueueWorkDurationSeconds.observe(labels, seconds),
    },
    unfinishedWorkSeconds: { set: (s) => m.workqueueUnfinishedWorkSeconds.set(labels, s) },
    longestRunningProcessorSeconds: {
      set: (s) => m.workqueueLongestRunningProcessorSeconds.set(labels, s),
    },
    retries: { inc: (value) => m.workqueueRetriesTotal.inc(labels, value) },
  };
}
