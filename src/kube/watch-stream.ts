// One watch request, as the informer needs it: open a stream, get each event, learn when it
// ended, abort it. The production factory is client-node's raw `Watch` (it brings the
// kubeconfig's authentication and TLS, and splits the stream into events); tests inject their
// own factories to simulate a silent connection or an expired resourceVersion.
import { Watch, type KubeConfig } from "@kubernetes/client-node";

/** A watch event as the API server sends it: ADDED, MODIFIED, DELETED, BOOKMARK or ERROR. */
export type WatchEventHandler = (type: string, object: unknown) => void;

export interface WatchHandle {
  /** Closes the stream; the factory's `onDone` may or may not be called afterwards. */
  abort(): void;
}

export type WatchQuery = Record<string, string | number | boolean | undefined>;

/**
 * Starts a watch on `path`. `onDone(err)` is called once when the stream ends: `null` for a
 * clean close (the server-side timeout), the error otherwise (an HTTP error carries `statusCode`).
 */
export type WatchFactory = (
  path: string,
  query: WatchQuery,
  onEvent: WatchEventHandler,
  onDone: (err: unknown) => void,
) => Promise<WatchHandle>;

/**
 * Watches through client-node's `Watch`.
 *
 * That `Watch` also aborts a stream after 30 s without a byte (and uses the same limit as its
 * connect timeout). The informer has its own watchdog with a configurable limit and a diagnostic
 * when it fires, so the library's limit is raised to `inactivityMs` (set above the watchdog) to
 * keep it as a backstop instead of restarting quiet-but-healthy watches every 30 s. The limit
 * is a private field in client-node 2.0.x; if a later version renames it, the assignment is a
 * no-op and the only effect is the library's 30 s restarts coming back.
 */
export function clientNodeWatchFactory(kubeConfig: KubeConfig, inactivityMs: number): WatchFactory {
  const watch = new Watch(kubeConfig);
  Reflect.set(watch, "requestTimeoutMs", inactivityMs);
  return (path, query, onEvent, onDone) =>
    watch.watch(path, query, (type, object) => onEvent(type, object), onDone);
}
