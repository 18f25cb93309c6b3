// The controller's work queue, shaped like client-go's rate-limited delaying queue. It holds
// keys (`namespace/name`), never objects: a worker reads the newest object from the informer's
// cache when it gets the key, so however many events arrived meanwhile, it acts once, on the
// latest state.
//
// Invariants (client-go's):
// - a key is at most once in the queue: adding a waiting key again does nothing;
// - a key is never processed by two workers at once: a key re-added while being processed is
//   held back and queued again when the worker calls `done`;
// - a delayed key (`addAfter`, `addRateLimited`) keeps the earliest time asked for.
// One deliberate difference: after `shutDown` no key is handed out any more, even if some are
// still queued. On SIGTERM the agent should finish what it started (thaw!) and start nothing new;
// the next agent's initial list queues every object again anyway.
//
// Below the queue: its ready list (a FIFO), its waiting keys (a heap by ready time), and what it
// reports to metrics (plain callbacks, so the queue never depends on prom-client).
import type { WorkqueueMetrics } from "../metrics/workqueue.ts";
import {
  defaultControllerRateLimiter,
  realClock,
  type Clock,
  type ClockTimer,
  type RateLimiter,
} from "./backoff.ts";

// ---- metrics -----------------------------------------------------------------------------------
// `workqueueMetricsHooks` adapts the bound `workqueue_*` metrics of src/metrics (the series
// client-go and controller-runtime export) to the queue's callbacks; `reportUnfinishedWork`
// samples the stuck-work gauges the way client-go does, every 500 ms.

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

// ---- the queue ---------------------------------------------------------------------------------

export interface WorkQueueOptions {
  /** Defaults to the real monotonic clock; tests pass a simulated one. */
  clock?: Clock;
  /** Defaults to controller-runtime's: per key 5 ms → 1000 s, overall 10/s burst 100. */
  rateLimiter?: RateLimiter;
  metrics?: WorkQueueMetricsHooks;
}

/**
 * A de-duplicating, delaying, rate-limited queue of keys.
 *
 * @example
 * const queue = new WorkQueue();
 * informer.onChange((key) => queue.add(key));
 * for (let key = await queue.get(); key !== undefined; key = await queue.get()) {
 *   try {
 *     const { requeueAfterMs } = await reconcile(key);
 *     queue.forget(key); // success: the next failure starts again at 5 ms
 *     if (requeueAfterMs) queue.addAfter(key, requeueAfterMs);
 *   } catch {
 *     queue.addRateLimited(key); // retry with this key's growing backoff
 *   } finally {
 *     queue.done(key); // lets a key re-added meanwhile be processed again
 *   }
 * }
 */
export class WorkQueue implements UnfinishedWork {
  private readonly clock: Clock;
  private readonly limiter: RateLimiter;
  private readonly metrics: WorkQueueMetricsHooks;

  private readonly ready = new Fifo<string>();
  /** Keys that need processing: queued, or re-added while processing. Value: when added. */
  private readonly dirty = new Map<string, number>();
  /** Keys handed to a worker and not yet `done`. Value: when handed out. */
  private readonly processing = new Map<string, number>();
  private readonly waiting = new DelayHeap();
  private waitingTimer: { timer: ClockTimer; at: number } | undefined;
  private readonly getters: Array<(key: string | undefined) => void> = [];

  private shuttingDown = false;
  private drained: (() => void) | undefined;

  constructor(options: WorkQueueOptions = {}) {
    this.clock = options.clock ?? realClock;
    this.limiter = options.rateLimiter ?? defaultControllerRateLimiter(this.clock);
    this.metrics = options.metrics ?? {};
  }

  /** Queues `key` unless it is already waiting; a key being processed runs again after `done`. */
  add(key: string): void {
    if (this.shuttingDown || this.dirty.has(key)) return;
    this.dirty.set(key, this.clock.now());
    this.metrics.onAdd?.();
    this.reportDepth();
    // The worker holding it will queue it again in done(): never two workers on one key.
    if (this.processing.has(key)) return;
    this.ready.push(key);
    this.handOut();
  }

  /** Queues `key` once `ms` have passed (at once if `ms <= 0`); an earlier pending time wins. */
  addAfter(key: string, ms: number): void {
    if (this.shuttingDown) return;
    this.metrics.onRetry?.();
    if (!(ms > 0)) {
      this.add(key);
      return;
    }
    if (this.waiting.schedule(key, this.clock.now() + ms)) this.armWaitingTimer();
  }

  /** Queues `key` after its rate-limited backoff; each call counts as one more failure. */
  addRateLimited(key: string): void {
    this.addAfter(key, this.limiter.when(key));
  }

  /** Resets the backoff of `key`: call it when `key` was processed successfully. */
  forget(key: string): void {
    this.limiter.forget(key);
  }

  /** How many rate-limited retries `key` has had since it was last forgotten. */
  numRequeues(key: string): number {
    return this.limiter.numRequeues(key);
  }

  /**
   * The next key to process, waiting for one if none is ready; `undefined` once the queue is
   * shut down. The caller owns the key until it calls `done(key)`.
   */
  get(): Promise<string | undefined> {
    if (this.shuttingDown) return Promise.resolve(undefined);
    if (this.ready.length > 0) return Promise.resolve(this.take());
    return new Promise((resolve) => this.getters.push(resolve));
  }

  /** Marks `key` processed; if it was added again meanwhile, it is queued now. */
  done(key: string): void {
    const startedAt = this.processing.get(key);
    if (startedAt === undefined) return;
    this.processing.delete(key);
    this.metrics.onWorkDuration?.((this.clock.now() - startedAt) / 1000);
    if (this.shuttingDown) {
      if (this.processing.size === 0) this.drained?.();
      return;
    }
    if (this.dirty.has(key)) {
      this.ready.push(key);
      this.handOut();
    }
  }

  /** Keys ready to be handed out (not those waiting for a delay or being processed). */
  len(): number {
    return this.ready.length;
  }

  /** Keys handed out and not yet `done`. */
  processingCount(): number {
    return this.processing.size;
  }

  isShuttingDown(): boolean {
    return this.shuttingDown;
  }

  /**
   * Stops the queue: waiting `get()` calls resolve to `undefined`, adds are ignored, delayed and
   * queued keys are dropped. Workers may still call `done` for the keys they hold.
   */
  shutDown(): void {
    if (this.shuttingDown) return;
    this.shuttingDown = true;
    this.waitingTimer?.timer.cancel();
    this.waitingTimer = undefined;
    this.waiting.clear();
    this.ready.clear();
    this.dirty.clear();
    this.reportDepth();
    for (const resolve of this.getters.splice(0)) resolve(undefined);
  }

  /** `shutDown`, then resolves once every key handed out has been marked `done`. */
  shutDownWithDrain(): Promise<void> {
    this.shutDown();
    if (this.processing.size === 0) return Promise.resolve();
    return new Promise((resolve) => {
      const previous = this.drained;
      this.drained = () => {
        previous?.();
        resolve();
      };
    });
  }

  unfinishedWorkSeconds(): number {
    const now = this.clock.now();
    let total = 0;
    for (const startedAt of this.processing.values()) total += now - startedAt;
    return total / 1000;
  }

  longestRunningProcessorSeconds(): number {
    const now = this.clock.now();
    let oldest = now;
    for (const startedAt of this.processing.values()) oldest = Math.min(oldest, startedAt);
    return (now - oldest) / 1000;
  }

  /** Gives ready keys to getters that are already waiting, oldest getter first. */
  private handOut(): void {
    while (this.getters.length > 0 && this.ready.length > 0) this.getters.shift()!(this.take());
  }

  private take(): string {
    const key = this.ready.shift()!;
    const addedAt = this.dirty.get(key)!;
    const now = this.clock.now();
    this.dirty.delete(key);
    this.processing.set(key, now);
    this.metrics.onQueueLatency?.((now - addedAt) / 1000);
    this.reportDepth();
    return key;
  }

  /** Keeps one timer, set for the earliest waiting key. */
  private armWaitingTimer(): void {
    const next = this.waiting.nextReadyAt();
    if (next === undefined || (this.waitingTimer && this.waitingTimer.at <= next)) return;
    this.waitingTimer?.timer.cancel();
    const timer = this.clock.setTimer(() => this.releaseWaiting(), next - this.clock.now());
    this.waitingTimer = { timer, at: next };
  }

  private releaseWaiting(): void {
    this.waitingTimer = undefined;
    if (this.shuttingDown) return;
    for (const key of this.waiting.popReady(this.clock.now())) this.add(key);
    this.armWaitingTimer();
  }

  private reportDepth(): void {
    this.metrics.onDepth?.(this.dirty.size);
  }
}

// ---- the ready list ----------------------------------------------------------------------------
// First in, first out, O(1) at both ends. A plain array's shift() moves every element; a resync
// queues every cached key at once (10,000 on a busy host), so the head is an index instead and the
// consumed prefix is dropped in bulk.

class Fifo<T> {
  private items: T[] = [];
  private head = 0;

  get length(): number {
    return this.items.length - this.head;
  }

  push(item: T): void {
    this.items.push(item);
  }

  shift(): T | undefined {
    if (this.head >= this.items.length) return undefined;
    const item = this.items[this.head]!;
    this.head += 1;
    // Compact once the consumed prefix is the larger half: amortised O(1), bounded garbage.
    if (this.head * 2 >= this.items.length) {
      this.items = this.items.slice(this.head);
      this.head = 0;
    }
    return item;
  }

  clear(): void {
    this.items = [];
    this.head = 0;
  }
}

// ---- the waiting keys --------------------------------------------------------------------------
// Keys waiting for their time (requeue-after, rate-limited retries), ordered by when they become
// ready. One entry per key: asking for a key again keeps the earlier of the two times, as
// client-go's delaying queue does, so a long backoff never postpones an explicit requeue.

interface Entry {
  readonly key: string;
  readonly readyAt: number;
  /** Insertion order, so keys ready at the same instant come out in the order they were added. */
  readonly seq: number;
}

class DelayHeap {
  private heap: Entry[] = [];
  /** The live entry of each key; heap entries that are not here were superseded (lazy deletion). */
  private readonly live = new Map<string, Entry>();
  private seq = 0;

  get size(): number {
    return this.live.size;
  }

  /** Schedules `key` at `readyAt` unless it is already due sooner. Returns whether it changed. */
  schedule(key: string, readyAt: number): boolean {
    const current = this.live.get(key);
    if (current && current.readyAt <= readyAt) return false;
    const entry = { key, readyAt, seq: this.seq++ };
    this.live.set(key, entry);
    this.push(entry);
    return true;
  }

  /** When the earliest key becomes ready, or undefined when nothing waits. */
  nextReadyAt(): number | undefined {
    this.dropSuperseded();
    return this.heap[0]?.readyAt;
  }

  /** Removes and returns every key ready at `now`, earliest first. */
  popReady(now: number): string[] {
    const ready: string[] = [];
    for (;;) {
      this.dropSuperseded();
      const top = this.heap[0];
      if (!top || top.readyAt > now) return ready;
      this.pop();
      this.live.delete(top.key);
      ready.push(top.key);
    }
  }

  clear(): void {
    this.heap = [];
    this.live.clear();
  }

  private dropSuperseded(): void {
    while (this.heap.length > 0 && this.live.get(this.heap[0]!.key) !== this.heap[0]) this.pop();
  }

  private push(entry: Entry): void {
    const h = this.heap;
    h.push(entry);
    let i = h.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!before(h[i]!, h[parent]!)) break;
      [h[i], h[parent]] = [h[parent]!, h[i]!];
      i = parent;
    }
  }

  private pop(): void {
    const h = this.heap;
    const last = h.pop()!;
    if (h.length === 0) return;
    h[0] = last;
    let i = 0;
    for (;;) {
      const l = 2 * i + 1;
      const r = l + 1;
      let smallest = i;
      if (l < h.length && before(h[l]!, h[smallest]!)) smallest = l;
      if (r < h.length && before(h[r]!, h[smallest]!)) smallest = r;
      if (smallest === i) return;
      [h[i], h[smallest]] = [h[smallest]!, h[i]!];
      i = smallest;
    }
  }
}

function before(a: Entry, b: Entry): boolean {
  return a.readyAt < b.readyAt || (a.readyAt === b.readyAt && a.seq < b.seq);
}
