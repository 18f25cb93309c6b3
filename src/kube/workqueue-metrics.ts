// What the work queue reports, as plain callbacks, so the queue never depends on prom-client.
// `workqueueMetricsHooks` adapts the bound `workqueue_*` metrics of src/metrics (the series
// client-go and controller-runtime export) to these callbacks; `reportUnfinishedWork` samples the
// stuck-work gauges the way client-go does, every 500 ms.
import type { WorkqueueMetrics } from "../metrics/workqueue.ts";

export interface WorkQueueMetricsHooks {
  /** A key entered the queue (a duplicate of a key already waiting does not count). */
  onAdd?(): void;
  /** Keys waiting to be processed, including those to run again after their current `done`. */
  onDepth?(depth: number): void;
  /** Seconds a key waited between being added and being handed to a worker. */
  onQueueLatency?(seconds: number): void;
  /** Seconds from handing a key to a worker until its `done`. */
  onWorkDuration?(seconds: number): void;
  /** A key was added with a delay (rate-limited retry or requeue-after). */
  onRetry?(): void;
}

/** What a queue tells about the work in progress, sampled by `reportUnfinishedWork`. */
export interface UnfinishedWork {
  /** Summed age of every key being processed. Growing steadily means a stuck worker. */
  unfinishedWorkSeconds(): number;
  /** Age of the oldest key being processed. */
  longestRunningProcessorSeconds(): number;
}

/**
 * Callbacks that feed one queue's bound `workqueue_*` metrics.
 *
 * @example
 * const queue = new WorkQueue({ metrics: workqueueMetricsHooks(metrics.forWorkqueue("vmsnapshot")) });
 */
export function workqueueMetricsHooks(m: WorkqueueMetrics): WorkQueueMetricsHooks {
  return {
    onAdd: () => m.adds.inc(),
    onDepth: (depth) => m.depth.set(depth),
    onQueueLatency: (s) => m.queueDuration.observe(s),
    onWorkDuration: (s) => m.workDuration.observe(s),
    onRetry: () => m.retries.inc(),
  };
}

/**
 * Sets the unfinished-work gauges from `queue` every `intervalMs` until the returned function is
 * called. Sampled rather than pushed because they grow while nothing happens to the queue.
 */
export function reportUnfinishedWork(
  queue: UnfinishedWork,
  m: Pick<WorkqueueMetrics, "unfinishedWorkSeconds" | "longestRunningProcessorSeconds">,
  intervalMs = 500,
): () => void {
  const sample = () => {
    m.unfinishedWorkSeconds.set(queue.unfinishedWorkSeconds());
    m.longestRunningProcessorSeconds.set(queue.longestRunningProcessorSeconds());
  };
  const timer = setInterval(sample, intervalMs);
  // A metrics sampler must never be what keeps the process alive.
  timer.unref();
  return () => {
    clearInterval(timer);
    sample();
  };
}
