// The controller's machinery around the sync function: the cache of this node's snapshots feeds
// a de-duplicating work queue, N workers run the reconciler, results become requeues, and
// metrics follow controller-runtime's names. Start-up and shutdown keep the thaw guarantee:
// before any worker runs, guests a previous instance left frozen (or paused) are thawed
// (resumed); on shutdown no new freeze starts and snapshots in flight finish or are undone.
import type { VMSnapshot } from "../api/types.ts";
import type { Logger } from "../log.ts";
import { mayBeFrozen } from "../machine/context.ts";
import { mayHavePaused } from "../machine/machine.ts";
import { isFinal } from "../machine/step.ts";
import type { ControllerMetrics } from "../metrics/index.ts";
import { keyOf } from "./effects.ts";
import type { HypervisorPort } from "./ports.ts";
import type { Reconciler } from "./reconciler.ts";
import { stateFromStatus } from "./status.ts";
import type { WorkQueue } from "../kube/workqueue.ts";

export const CONTROLLER_NAME = "vmsnapshot";

/** What the controller needs of the informer: a synced cache and change notifications. */
export interface SnapshotCache {
  start(): Promise<void>;
  get(namespace: string, name: string): VMSnapshot | undefined;
  list(): VMSnapshot[];
  onChange(handler: (key: string) => void): unknown;
  stop(): void | Promise<void>;
}

export interface ControllerOptions {
  readonly cache: SnapshotCache;
  readonly queue: WorkQueue;
  readonly reconciler: Reconciler;
  readonly hypervisor: HypervisorPort;
  readonly workers: number;
  readonly log: Logger;
  readonly metrics?: ControllerMetrics;
  /** Called before shutdown drains, so no new freeze starts. */
  readonly onDraining?: () => void;
  readonly callTimeoutMs?: number;
}

export class Controller {
  private workersDone: Promise<void>[] = [];
  private ready = false;

  constructor(private readonly o: ControllerOptions) {}

  /** True once the first list is cached, leftovers are thawed and workers run. */
  isReady(): boolean {
    return this.ready;
  }

  async start(): Promise<void> {
    await this.o.cache.start();
    // Thaw first, before any worker: a guest must not wait for the queue to stay frozen.
    await this.thawLeftovers();
    this.o.cache.onChange((key) => this.o.queue.add(key));
    for (const snapshot of this.o.cache.list()) this.o.queue.add(keyOf(snapshot));
    for (let i = 0; i < this.o.workers; i++) this.workersDone.push(this.worker());
    this.ready = true;
    this.o.log.info("controller started", {
      workers: this.o.workers,
      snapshots: this.o.cache.list().length,
    });
  }

  /** Stops taking work, lets in-flight reconciles finish, then stops watching. */
  async stop(): Promise<void> {
    this.ready = false;
    this.o.onDraining?.();
    await this.o.queue.shutDownWithDrain();
    await Promise.all(this.workersDone);
    await this.o.cache.stop();
    this.o.log.info("controller stopped");
  }

  /** Thaws (and resumes) every guest that an in-flight snapshot may have left frozen. */
  private async thawLeftovers(): Promise<void> {
    const timeoutMs = this.o.callTimeoutMs ?? 10_000;
    for (const snapshot of this.o.cache.list()) {
      if (isFinal(snapshot.status?.phase ?? "Pending")) continue;
      const { context } = stateFromStatus(snapshot, Date.now());
      const domain = snapshot.spec.source.domain;
      try {
        if (mayHavePaused(context) && context.resumedAt === undefined) {
          const info = await this.o.hypervisor.domainInfo(domain, { timeoutMs });
          if (info.state === "paused") await this.o.hypervisor.resume(domain, { timeoutMs });
        }
        if (mayBeFrozen(context)) {
          const thawed = await this.o.hypervisor.fsThaw(domain, { timeoutMs });
          this.o.log.warn("thawed a guest left frozen by a previous instance", {
            key: keyOf(snapshot),
            domain,
            phase: snapshot.status?.phase,
            filesystems: thawed,
          });
        }
      } catch (err) {
        this.o.log.error("could not thaw a guest left by a previous instance", {
          key: keyOf(snapshot),
          domain,
          error: String(err),
        });
      }
    }
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
