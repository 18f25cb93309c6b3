// The agent's view of one resource: a cache of every object of a kind that matches a field
// selector (for VMSnapshots: those whose `spec.source.node` is this host), kept current by LIST
// then WATCH, and a callback per change that feeds the work queue.
//
// Built on client-node's raw `Watch` rather than its `ListWatch`/`makeInformer`: in 2.0.1,
// ListWatch still gives up for good on any watch or list error other than 410 or a client
// timeout (it reports the error and returns, and its `start()` would reset the backoff), cannot
// pass `timeoutSeconds` or `allowWatchBookmarks`, lists in one unpaginated request, has no
// resync, and copies the whole cache on every `list()`. What it does right is kept here too:
// relist on 410, resume from the last resourceVersion (bookmarks included), backoff.
//
// The loop, like client-go's reflector:
//   LIST (paged) → replace the cache → WATCH from the list's resourceVersion, with a server-side
//   timeout (jittered) and bookmarks → on any end, resume the WATCH from the newest
//   resourceVersion seen after a backoff (reset by a healthy stream); on 410 Gone, LIST again.
// A watchdog ends a stream that stays silent, and a resync re-announces every cached key so a
// missed or failed reconcile is retried even if nothing changes.
import type { KubeConfig } from "@kubernetes/client-node";
import { ExponentialBackoff, type BackoffOptions } from "./backoff.ts";
import { customObjectsLister, isGone, listAll, type PageLister } from "./informer-list.ts";
import { forCache, ObjectStore, type Change, type ChangeKind } from "./informer-store.ts";
import { collectionPath, objectKey, type KubeObject, type ResourceDescriptor } from "./resource.ts";
import { clientNodeWatchFactory, type WatchFactory, type WatchHandle } from "./watch-stream.ts";
import { Watchdog } from "./watchdog.ts";

export type { ChangeKind } from "./informer-store.ts";

export type ChangeHandler = (key: string, kind: ChangeKind) => void;

/** Why a watch stream ended. */
export type WatchEndReason =
  /** The server closed it cleanly (its `timeoutSeconds` elapsed). */
  | "closed"
  /** A network or HTTP error, or an ERROR event other than 410. */
  | "error"
  /** 410 Gone: our resourceVersion is older than the server keeps; a LIST follows. */
  | "expired"
  /** Nothing arrived, not even a bookmark, for `watchdogMs`. */
  | "watchdog"
  /** `stop()` was called. */
  | "stopped";

/** What the informer did, for logs and metrics; nothing here needs an answer. */
export type InformerDiagnostic =
  | { type: "listed"; items: number; pages: number; resourceVersion: string; durationMs: number }
  | { type: "list-failed"; error: unknown }
  | { type: "watch-started"; resourceVersion: string; timeoutSeconds: number }
  | {
      type: "watch-ended";
      reason: WatchEndReason;
      events: number;
      durationMs: number;
      error?: unknown;
    }
  | { type: "backoff"; delayMs: number; attempt: number }
  | { type: "resync"; keys: number }
  | { type: "handler-failed"; key: string; error: unknown };

export interface InformerOptions {
  kubeConfig: KubeConfig;
  /** The resource listed and watched, e.g. `vmsnapshots` of src/api/types.ts. */
  resource: ResourceDescriptor;
  /** Only objects matching it are listed and watched (e.g. `spec.source.node=<this host>`). */
  fieldSelector?: string;
  /** Watch one namespace only; all namespaces by default (and always for cluster-scoped kinds). */
  namespace?: string;
  /** Re-announce every cached key this often (default 5 min; 0 turns resync off). */
  resyncMs?: number;
  /** Server-side watch timeout; each watch asks for a random value in [t, 2t] (default 300 s). */
  watchTimeoutSeconds?: number;
  /** Restart a watch that delivered nothing for this long (default 180 s; see DEFAULT_WATCHDOG_MS). */
  watchdogMs?: number;
  /** Ask for BOOKMARK events (default true; tests turn it off to prove the watchdog). */
  allowWatchBookmarks?: boolean;
  /** How long a watch may take to connect and get its response headers (default 30 s). */
  connectTimeoutMs?: number;
  /** Objects per LIST page (default 500). */
  pageSize?: number;
  /** Deadline for each LIST page (default 60 s). */
  listTimeoutMs?: number;
  /** Reconnect backoff (default 100 ms doubling to 30 s, with jitter). */
  backoff?: BackoffOptions;
  onEvent?: (diagnostic: InformerDiagnostic) => void;
  /**
   * A watch went silent past the watchdog, or a LIST failed: the connection under them may be
   * dead. With requests multiplexed on one shared connection, the caller drops it here so the
   * next watch and LIST connect afresh instead of queueing on the dead one.
   */
  onConnectionSuspect?: () => void;
  /** How watches are opened; client-node's `Watch` by default. */
  watchFactory?: WatchFactory;
  /** How list pages are fetched; client-node's CustomObjectsApi by default. */
  lister?: PageLister;
}

export const DEFAULT_RESYNC_MS = 5 * 60_000;
export const DEFAULT_WATCH_TIMEOUT_SECONDS = 300;
/**
 * On a quiet bookmark-enabled watch, kube-apiserver 1.37 sent the first bookmark ~122 s after the
 * watch began, then one every 60 s, and one 2 s before its timeout (measured here). Three minutes
 * without a byte is therefore a dead stream, not a quiet one.
 */
export const DEFAULT_WATCHDOG_MS = 180_000;
export const DEFAULT_CONNECT_TIMEOUT_MS = 30_000;
const DEFAULT_PAGE_SIZE = 500;
const DEFAULT_LIST_TIMEOUT_MS = 60_000;
/** A stream that lasted this long was healthy even if nothing happened on it. */
const HEALTHY_STREAM_MS = 10_000;

interface WatchOutcome {
  reason: WatchEndReason;
  /** Delivered a non-error event, or ran cleanly for a while: the backoff can start over. */
  healthy: boolean;
}

/**
 * A cache of one resource's objects, kept current from the API server.
 *
 * Objects returned by `get` and `list` are shared and deeply frozen: never mutate them (writes
 * throw in strict mode); copy first, e.g. `structuredClone(obj)`, to build a patch.
 *
 * @example
 * const informer = new Informer<VMSnapshot>({ kubeConfig, resource: vmsnapshots, fieldSelector });
 * informer.onChange((key) => queue.add(key)); // before start(): the first list is announced too
 * await informer.start();                      // the cache is complete from here on
 * startWorkers();
 */
export class Informer<T extends KubeObject> {
  private readonly store = new ObjectStore<T>();
  private readonly handlers = new Set<ChangeHandler>();
  private readonly backoff: ExponentialBackoff;
  private readonly watchFactory: WatchFactory;
  private readonly lister: PageLister;
  private readonly fieldSelector: string;
  private readonly watchPath: string;
  private readonly resyncMs: number;
  private readonly watchTimeoutSeconds: number;
  private readonly watchdogMs: number;
  private readonly connectTimeoutMs: number;
  private readonly allowWatchBookmarks: boolean;
  private readonly pageSize: number;
  private readonly listTimeoutMs: number;
  private readonly report: (diagnostic: InformerDiagnostic) => void;

  private resourceVersion = "";
  private synced = false;
  private stopped = false;
  private readonly stopController = new AbortController();
  private readonly onConnectionSuspect: () => void;
  private running: Promise<void> | undefined;
  private started: Promise<void> | undefined;
  private onSynced: (() => void) | undefined;
  private onStoppedBeforeSync: (() => void) | undefined;
  private resyncTimer: NodeJS.Timeout | undefined;
  /** Ends the current watch stream or backoff sleep at once; set while one is in progress. */
  private interrupt: (() => void) | undefined;

  constructor(options: InformerOptions) {
    this.fieldSelector = options.fieldSelector ?? "";
    this.watchPath = collectionPath(options.resource, options.namespace);
    this.resyncMs = options.resyncMs ?? DEFAULT_RESYNC_MS;
    this.watchTimeoutSeconds = options.watchTimeoutSeconds ?? DEFAULT_WATCH_TIMEOUT_SECONDS;
    this.watchdogMs = options.watchdogMs ?? DEFAULT_WATCHDOG_MS;
    this.connectTimeoutMs = options.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS;
    this.allowWatchBookmarks = options.allowWatchBookmarks ?? true;
    this.pageSize = options.pageSize ?? DEFAULT_PAGE_SIZE;
    this.listTimeoutMs = options.listTimeoutMs ?? DEFAULT_LIST_TIMEOUT_MS;
    this.backoff = new ExponentialBackoff({ initialMs: 100, maxMs: 30_000, ...options.backoff });
    // The library's own inactivity abort stays as a backstop behind our watchdog.
    this.watchFactory =
      options.watchFactory ?? clientNodeWatchFactory(options.kubeConfig, this.watchdogMs + 30_000);
    this.lister =
      options.lister ??
      customObjectsLister(options.kubeConfig, options.resource, options.namespace);
    const onSuspect = options.onConnectionSuspect;
    this.onConnectionSuspect = () => {
      try {
        onSuspect?.();
      } catch {
        // Dropping a connection is best effort; the watch and LIST retry regardless.
      }
    };
    const onEvent = options.onEvent;
    this.report = (d) => {
      try {
        onEvent?.(d);
      } catch {
        // A broken logger must not break the cache.
      }
    };
  }

  /**
   * Starts listing and watching. Resolves once the first LIST is in the cache (retrying with
   * backoff until it succeeds: a missing CRD or RBAC rule is reported through `onEvent`, not
   * thrown); rejects if `stop()` is called first.
   */
  start(): Promise<void> {
    if (this.stopped) return Promise.reject(new Error("informer stopped"));
    this.started ??= new Promise<void>((resolve, reject) => {
      this.onSynced = resolve;
      this.onStoppedBeforeSync = () => reject(new Error("informer stopped before its first list"));
      this.running = this.run();
    });
    return this.started;
  }

  /** Stops watching and resync; resolves when the loop has exited. The cache stays readable. */
  async stop(): Promise<void> {
    if (this.stopped) return this.running;
    this.stopped = true;
    this.stopController.abort();
    clearInterval(this.resyncTimer);
    this.interrupt?.();
    if (!this.synced) this.onStoppedBeforeSync?.();
    await this.running;
  }

  /**
   * Registers `handler` for every change: `added`/`modified`/`deleted` as the cache changes,
   * `resync` for every key periodically. Handlers run synchronously and should only enqueue.
   * Returns a function that unregisters it.
   */
  onChange(handler: ChangeHandler): () => void {
    this.handlers.add(handler);
    return () => this.handlers.delete(handler);
  }

  /** The cached object (frozen: copy before changing), or undefined. */
  get(namespace: string, name: string): T | undefined {
    return this.store.get(namespace ? `${namespace}/${name}` : name);
  }

  /** The cached object for a `namespace/name` key, as the work queue carries it. */
  getByKey(key: string): T | undefined {
    return this.store.get(key);
  }

  /** Every cached object (frozen objects; the array is a fresh one). */
  list(): T[] {
    return [...this.store.values()];
  }

  /** Number of cached objects. */
  get size(): number {
    return this.store.size;
  }

  /** Whether the first LIST has completed: only then is a missing key really absent. */
  hasSynced(): boolean {
    return this.synced;
  }

  /** The newest resourceVersion seen (list, event or bookmark); where the next watch resumes. */
  get lastResourceVersion(): string {
    return this.resourceVersion;
  }

  private async run(): Promise<void> {
    let needList = true;
    while (!this.stopped) {
      if (needList) {
        if (!(await this.relist())) {
          await this.sleep(this.backoff.next());
          continue;
        }
        needList = false;
      }
      const outcome = await this.watchOnce();
      if (outcome.reason === "stopped") break;
      if (outcome.reason === "expired") needList = true;
      if (outcome.healthy) this.backoff.reset();
      await this.sleep(this.backoff.next());
    }
  }

  /**
   * LISTs into the cache; false (reported) on failure. Pages are applied as they arrive, so a
   * relist holds one page besides the cache rather than a second full copy; every object in a
   * page is at least as new as the cached one (the list is a later snapshot), so readers only
   * ever see newer objects. Deletions are applied once the list is complete.
   */
  private async relist(): Promise<boolean> {
    const startedAt = performance.now();
    let seen = new Set<string>();
    let listed;
    try {
      listed = await listAll<T>(
        this.lister,
        this.fieldSelector,
        this.pageSize,
        this.listTimeoutMs,
        this.stopController.signal,
        (objects, fromStart) => {
          if (fromStart) seen = new Set();
          for (const obj of objects) {
            seen.add(objectKey(obj));
            const change = this.store.upsert(obj);
            if (change) this.notify(change);
          }
        },
      );
    } catch (error) {
      if (!this.stopped) {
        this.report({ type: "list-failed", error });
        this.onConnectionSuspect();
      }
      return false;
    }
    if (this.stopped) return false;
    for (const change of this.store.retainOnly(seen)) this.notify(change);
    this.resourceVersion = listed.resourceVersion;
    this.report({
      type: "listed",
      items: listed.items,
      pages: listed.pages,
      resourceVersion: listed.resourceVersion,
      durationMs: performance.now() - startedAt,
    });
    this.backoff.reset();
    this.markSynced();
    return true;
  }

  private markSynced(): void {
    if (this.synced) return;
    this.synced = true;
    this.onSynced?.();
    if (this.resyncMs > 0) {
      this.resyncTimer = setInterval(() => this.resync(), this.resyncMs);
    }
  }

  private resync(): void {
    this.report({ type: "resync", keys: this.store.size });
    for (const key of [...this.store.keys()]) this.emit(key, "resync");
  }

  /** Runs one watch stream to its end. */
  private watchOnce(): Promise<WatchOutcome> {
    const startedAt = performance.now();
    const timeoutSeconds = Math.floor(this.watchTimeoutSeconds * (1 + Math.random()));
    let events = 0;
    let handle: WatchHandle | undefined;
    let finished = false;

    return new Promise<WatchOutcome>((resolve) => {
      const finish = (reason: WatchEndReason, error?: unknown) => {
        if (finished) return;
        finished = true;
        watchdog.stop();
        this.interrupt = undefined;
        handle?.abort();
        const durationMs = performance.now() - startedAt;
        this.report({ type: "watch-ended", reason, events, durationMs, error });
        const healthy = events > 0 || (reason === "closed" && durationMs >= HEALTHY_STREAM_MS);
        resolve({ reason, healthy });
      };
      const watchdog = new Watchdog(this.watchdogMs, () => {
        finish("watchdog");
        this.onConnectionSuspect();
      });
      this.interrupt = () => finish("stopped");
      // Armed before connecting: a connection attempt that hangs is as dead as a silent stream,
      // and is given less time than an open stream, which may legitimately wait for a bookmark.
      watchdog.kick(Math.min(this.connectTimeoutMs, this.watchdogMs));

      const onEvent = (type: string, object: unknown) => {
        if (finished) return;
        watchdog.kick();
        if (type === "ERROR") {
          const status = object as { code?: number; message?: string };
          if (status?.code === 410) finish("expired", status);
          else finish("error", status);
          return;
        }
        events += 1;
        this.apply(type, object);
      };
      const onDone = (err: unknown) => {
        if (err === null || err === undefined) finish("closed");
        else finish(isGone(err) ? "expired" : "error", err);
      };

      this.report({
        type: "watch-started",
        resourceVersion: this.resourceVersion,
        timeoutSeconds,
      });
      const query = {
        fieldSelector: this.fieldSelector || undefined,
        resourceVersion: this.resourceVersion,
        allowWatchBookmarks: this.allowWatchBookmarks,
        timeoutSeconds,
      };
      // Through then(): a factory that throws synchronously ends this stream, not the loop.
      Promise.resolve()
        .then(() => this.watchFactory(this.watchPath, query, onEvent, onDone))
        .then(
          (h) => {
            handle = h;
            if (finished) h.abort();
            // Response headers are in: from here on, silence is measured against bookmarks.
            else watchdog.kick();
          },
          (err: unknown) => finish("error", err),
        );
    });
  }

  /** Applies one watch event to the cache and announces the change. */
  private apply(type: string, object: unknown): void {
    const rv = (object as { metadata?: { resourceVersion?: string } })?.metadata?.resourceVersion;
    let change: Change | undefined;
    switch (type) {
      case "ADDED":
      case "MODIFIED":
        change = this.store.upsert(forCache<T>(object));
        break;
      case "DELETED":
        change = this.store.remove(objectKey(object as KubeObject));
        break;
      case "BOOKMARK":
        // Carries only a resourceVersion: resuming from it skips history we don't need.
        break;
      default:
        return;
    }
    if (rv) this.resourceVersion = rv;
    if (change) this.notify(change);
  }

  private notify(change: Change): void {
    this.emit(change.key, change.kind);
  }

  private emit(key: string, kind: ChangeKind): void {
    for (const handler of this.handlers) {
      try {
        handler(key, kind);
      } catch (error) {
        this.report({ type: "handler-failed", key, error });
      }
    }
  }

  /** Waits `ms`, or less if stopped meanwhile. */
  private sleep(ms: number): Promise<void> {
    if (this.stopped) return Promise.resolve();
    this.report({ type: "backoff", delayMs: ms, attempt: this.backoff.attempts });
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.interrupt = undefined;
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.interrupt = done;
    });
  }
}
