// The controller's machinery around the sync function, for any kind: the cache of this node's
// objects feeds a de-duplicating work queue, N workers run the reconciler, results become
// requeues, and metrics follow controller-runtime's names. Start-up and shutdown keep the thaw
// guarantee: before any worker runs, the kind recovers what a previous instance left (guests
// left frozen or paused are thawed and resumed); on shutdown no new freeze starts and work in
// flight finishes or is undone. Nothing here depends on how a kind reconciles: a VMSnapshot's
// phase machine (reconciler.ts) and a schedule's planner (src/schedule/) run on the same workers.
import type { Logger } from "../log.ts";
import type { ControllerMetrics } from "../metrics/index.ts";
import { objectKey, type KubeObject } from "../kube/resource.ts";
import type { WorkQueue } from "../kube/workqueue.ts";

/** What the controller needs of the informer: a synced cache and change notifications. */
export interface ObjectCache<T> {
  start(): Promise<void>;
  get(namespace: string, name: string): T | undefined;
  list(): T[];
  onChange(handler: (key: string) => void): unknown;
  stop(): void | Promise<void>;
}

/** What the workers need of a kind: its name, and what to undo before any worker runs. */
export interface ControlledKind<T> {
  /** The controller's name in metrics and logs (controller-runtime's `controller` label). */
  readonly name: string;
  /** At start-up, before any worker: undo what a previous process left in the world. */
  recover?(objects: readonly T[]): Promise<void>;
}

/** The sync function of one key: the workers turn its result into a requeue, its throw into a retry. */
export interface KeyReconciler {
  reconcile(key: string): Promise<{ readonly requeueAfterMs?: number }>;
}

export interface ControllerOptions<T extends KubeObject> {
  readonly kind: ControlledKind<T>;
  readonly cache: ObjectCache<T>;
  readonly queue: WorkQueue;
  readonly reconciler: KeyReconciler;
  readonly workers: number;
  readonly log: Logger;
  readonly metrics?: ControllerMetrics;
  /** Called before shutdown drains, so no new freeze starts. */
  readonly onDraining?: () => void;
}

export class Controller<T extends KubeObject> {
  private workersDone: Promise<void>[] = [];
  private ready = false;

  constructor(private readonly o: ControllerOptions<T>) {}

  /** True once the first list is cached, leftovers are recovered and workers run. */
  isReady(): boolean {
    return this.ready;
  }

  async start(): Promise<void> {
    await this.o.cache.start();
    // Recover first, before any worker: a guest must not wait for the queue to stay frozen.
    await this.o.kind.recover?.(this.o.cache.list());
    this.o.cache.onChange((key) => this.o.queue.add(key));
    for (const object of this.o.cache.list()) this.o.queue.add(objectKey(object));
    for (let i = 0; i < this.o.workers; i++) this.workersDone.push(this.worker());
    this.ready = true;
    this.o.log.info("controller started", {
      controller: this.o.kind.name,
      workers: this.o.workers,
      objects: this.o.cache.list().length,
    });
  }

  /** Stops taking work, lets in-flight reconciles finish, then stops watching. */
  async stop(): Promise<void> {
    this.ready = false;
    this.o.onDraining?.();
    await this.o.queue.shutDownWithDrain();
    await Promise.all(this.workersDone);
    await this.o.cache.stop();
    this.o.log.info("controller stopped", { controller: this.o.kind.name });
  }

  private async worker(): Promise<void> {
    for (let key = await this.o.queue.get(); key !== undefined; key = await this.o.queue.get()) {
      const started = performance.now();
      this.o.metrics?.activeWorkers.inc();
      try {
        const { requeueAfterMs } = await this.o.reconciler.reconcile(key);
        // Success: the key's next failure starts its backoff from the beginning.
        this.o.queue.forget(key);
        if (requeueAfterMs !== undefined) {
          this.o.queue.addAfter(key, requeueAfterMs);
          this.o.metrics?.reconciled("requeue_after");
        } else {
          this.o.metrics?.reconciled("success");
        }
      } catch (err) {
        // Retry with this key's growing backoff; conflicts and API outages end up here.
        this.o.queue.addRateLimited(key);
        this.o.metrics?.reconciled("error");
        this.o.metrics?.reconcileErrors.inc();
        this.o.log.warn("reconcile failed; will retry", { key, error: String(err) });
      } finally {
        this.o.metrics?.activeWorkers.dec();
        this.o.metrics?.reconcileTime.observe((performance.now() - started) / 1000);
        // Lets a key re-added while it was processed be processed again.
        this.o.queue.done(key);
      }
    }
  }
}
