// One managed libvirt connection under the Hypervisor: opens it on first use, runs every call
// under a deadline (never sending one whose deadline passed while the connection opened),
// notices a lost connection (libvirt's close callback, or a failed call on a dead connection),
// reconnects with backoff while anyone listens for events, and re-registers those event
// listeners on each new connection. How many calls a connection carries at once is lanes.ts's.
import { withDeadline, type Stall } from "./deadline.ts";
import { HypervisorError, toHypervisorError, type Operation } from "./errors.ts";
import {
  decodeAgentLifecycle,
  decodeLifecycle,
  type AgentLifecycleEvent,
  type LifecycleEvent,
} from "./events.ts";
import { CloseReason, DomainEventId } from "./flags.ts";
import type { NativeBinding, NativeConnection } from "./native.ts";

export interface LinkOptions {
  /** Deadline of a call that names none. */
  readonly callTimeoutMs: number;
  /** Deadline of opening a connection, first or again. */
  readonly openTimeoutMs: number;
  /** libvirt keepalive: a silent daemon is declared dead after interval × count seconds. */
  readonly keepaliveIntervalSeconds: number;
  readonly keepaliveCount: number;
  /** Reconnect backoff bounds; the delay doubles from min to max while attempts fail. */
  readonly reconnectMinMs: number;
  readonly reconnectMaxMs: number;
}

/** Why the connection was lost: libvirt's close reason, or a call that found it dead. */
export type LostReason = "error" | "eof" | "keepalive" | "client" | "call-failed";

interface Listeners {
  lifecycle: Set<(event: LifecycleEvent) => void>;
  agent: Set<(event: AgentLifecycleEvent) => void>;
}
type EventKind = keyof Listeners;

/** One open native connection and the event registrations made on it. */
interface Live {
  readonly native: NativeConnection;
  readonly registrations: Map<EventKind, Promise<number>>;
}

const CLOSE_REASONS: Record<number, LostReason> = {
  [CloseReason.Error]: "error",
  [CloseReason.Eof]: "eof",
  [CloseReason.Keepalive]: "keepalive",
  [CloseReason.Client]: "client",
};

export class Link {
  private live: Live | undefined;
  private opening: Promise<Live> | undefined;
  private generation = 0;
  private closed = false;
  private reconnectTimer: NodeJS.Timeout | undefined;
  private reconnectDelayMs: number;
  private readonly listeners: Listeners = { lifecycle: new Set(), agent: new Set() };
  private readonly lostListeners = new Set<(reason: LostReason) => void>();
  private readonly restoredListeners = new Set<() => void>();

  constructor(
    readonly uri: string,
    private readonly binding: NativeBinding,
    readonly options: LinkOptions,
  ) {
    this.reconnectDelayMs = options.reconnectMinMs;
  }

  get connected(): boolean {
    return this.live !== undefined;
  }

  /** Runs `run` on the connection (opening it if needed); all of it within `timeoutMs`. */
  call<T>(
    operation: Operation,
    target: string | undefined,
    timeoutMs: number | undefined,
    run: (conn: NativeConnection) => Promise<T>,
  ): Promise<T> {
    return this.withLive(operation, target, timeoutMs, (live) => run(live.native));
  }

  /** Opens the connection now, so a bad URI fails at start-up rather than at the first call. */
  async connect(): Promise<void> {
    await this.connection();
  }

  async subscribe(
    kind: "lifecycle",
    listener: (event: LifecycleEvent) => void,
  ): Promise<() => Promise<void>>;
  async subscribe(
    kind: "agent",
    listener: (event: AgentLifecycleEvent) => void,
  ): Promise<() => Promise<void>>;
  async subscribe(kind: EventKind, listener: (event: never) => void): Promise<() => Promise<void>> {
    const set = this.listeners[kind] as Set<(event: never) => void>;
    set.add(listener);
    try {
      // Resolves once libvirt delivers to us: an event right after this can't be missed.
      await this.withLive("subscribe", undefined, undefined, (live) => this.register(live, kind));
    } catch (err) {
      set.delete(listener);
      throw err;
    }
    return async () => {
      if (!set.delete(listener) || set.size > 0) return;
      await this.unregister(kind);
    };
  }

  onLost(listener: (reason: LostReason) => void): () => void {
    this.lostListeners.add(listener);
    return () => this.lostListeners.delete(listener);
  }

  onRestored(listener: () => void): () => void {
    this.restoredListeners.add(listener);
    return () => this.restoredListeners.delete(listener);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearTimeout(this.reconnectTimer);
    const live = this.live;
    this.live = undefined;
    // A connection still being opened is closed by open() itself when it lands.
    if (live === undefined) return;
    const ms = this.options.callTimeoutMs;
    await withDeadline(live.native.close(), ms, (stall) =>
      timeoutError("close", undefined, ms, stall),
    ).catch((err: unknown) => {
      throw toHypervisorError(err, "close");
    });
  }

  // ---- connection ------------------------------------------------------------------------

  private withLive<T>(
    operation: Operation,
    target: string | undefined,
    timeoutMs: number | undefined,
    run: (live: Live) => Promise<T>,
  ): Promise<T> {
    const ms = timeoutMs ?? this.options.callTimeoutMs;
    let used: Live | undefined;
    let expired = false;
    const work = this.connection().then((live) => {
      // Its caller gave up while the connection opened: libvirt never sees it.
      if (expired) throw timeoutError(operation, target, ms);
      used = live;
      return run(live);
    });
    const timedOut = (stall?: Stall) => {
      expired = true;
      return timeoutError(operation, target, ms, stall);
    };
    return withDeadline(work, ms, timedOut).catch((err: unknown) => {
      const error = toHypervisorError(err, operation, target);
      // Only the connection that failed is dropped, not one opened meanwhile.
      if (error.reason === "ConnectionLost" && used !== undefined && used === this.live)
        this.drop("call-failed");
      throw error;
    });
  }

  private connection(): Promise<Live> {
    if (this.closed) return Promise.reject(closedError());
    if (this.live) return Promise.resolve(this.live);
    // Concurrent callers share one attempt.
    this.opening ??= this.open().finally(() => (this.opening = undefined));
    return this.opening;
  }

  private async open(): Promise<Live> {
    const generation = ++this.generation;
    const ms = this.options.openTimeoutMs;
    let native: NativeConnection;
    try {
      native = await withDeadline(
        this.binding.open(
          this.uri,
          this.options.keepaliveIntervalSeconds,
          this.options.keepaliveCount,
          (reason) => this.onNativeClose(generation, reason),
        ),
        ms,
        (stall) => timeoutError("open", undefined, ms, stall),
        // Nobody waits for a connection that opened after its deadline: don't leak it.
        (late) => void late.close().catch(() => {}),
      );
    } catch (err) {
      throw toHypervisorError(err, "open");
    }
    const live: Live = { native, registrations: new Map() };
    try {
      for (const kind of ["lifecycle", "agent"] as const) {
        if (this.closed || this.listeners[kind].size === 0) continue;
        // Bounded too: every caller waits on this one shared attempt.
        const callMs = this.options.callTimeoutMs;
        await withDeadline(this.register(live, kind), callMs, (stall) =>
          timeoutError("subscribe", undefined, callMs, stall),
        );
      }
      // close() may have run while this attempt was under way; it could not close this one.
      if (this.closed) throw closedError();
    } catch (err) {
      void native.close().catch(() => {});
      throw toHypervisorError(err, "subscribe");
    }
    const restored = this.generation > 1;
    this.live = live;
    this.reconnectDelayMs = this.options.reconnectMinMs;
    if (restored) for (const listener of this.restoredListeners) notify(listener, undefined);
    return live;
  }

  private onNativeClose(generation: number, reason: number): void {
    if (generation === this.generation && this.live !== undefined)
      this.drop(CLOSE_REASONS[reason] ?? "error");
  }

  private drop(reason: LostReason): void {
    const live = this.live;
    if (live === undefined) return;
    this.live = undefined;
    // The native object still holds libvirt's references: release them, off the JS thread.
    void live.native.close().catch(() => {});
    for (const listener of this.lostListeners) notify(listener, reason);
    // Calls reconnect on demand; event listeners have no call to do it for them.
    if (this.listeners.lifecycle.size > 0 || this.listeners.agent.size > 0)
      this.scheduleReconnect();
  }

  private scheduleReconnect(): void {
    if (this.closed || this.reconnectTimer !== undefined) return;
    const delay = this.reconnectDelayMs;
    this.reconnectDelayMs = Math.min(delay * 2, this.options.reconnectMaxMs);
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = undefined;
      this.connection().catch(() => this.scheduleReconnect());
    }, delay);
    // Reconnecting alone is no reason to keep the process alive.
    this.reconnectTimer.unref();
  }

  // ---- events ----------------------------------------------------------------------------

  private register(live: Live, kind: EventKind): Promise<number> {
    let registration = live.registrations.get(kind);
    if (registration === undefined) {
      registration =
        kind === "lifecycle"
          ? live.native.registerDomainEvent(DomainEventId.Lifecycle, (event) => {
              for (const listener of [...this.listeners.lifecycle])
                notify(listener, decodeLifecycle(event));
            })
          : live.native.registerDomainEvent(DomainEventId.AgentLifecycle, (event) => {
              for (const listener of [...this.listeners.agent])
                notify(listener, decodeAgentLifecycle(event));
            });
      live.registrations.set(kind, registration);
      // A failed registration must not stick: the next subscriber tries again.
      registration.catch(() => live.registrations.delete(kind));
    }
    return registration;
  }

  private async unregister(kind: EventKind): Promise<void> {
    const live = this.live;
    const registration = live?.registrations.get(kind);
    if (live === undefined || registration === undefined) return;
    live.registrations.delete(kind);
    const ms = this.options.callTimeoutMs;
    const work = registration.then((id) => live.native.deregisterDomainEvent(id));
    await withDeadline(work, ms, (stall) => timeoutError("subscribe", undefined, ms, stall)).catch(
      (err: unknown) => {
        throw toHypervisorError(err, "subscribe");
      },
    );
  }
}

/** Calls a listener; its exception surfaces as uncaught (like an EventEmitter's) without
 *  keeping the other listeners from their event. */
function notify<T>(listener: (value: T) => void, value: T): void {
  try {
    listener(value);
  } catch (err) {
    queueMicrotask(() => {
      throw err;
    });
  }
}

/**
 * The call's deadline passed: libvirt's Timeout, or ProcessStalled when we were not running.
 * `why` says what the call was waiting for when it was not yet in libvirt.
 */
export function timeoutError(
  operation: Operation,
  target: string | undefined,
  ms: number,
  stall?: Stall,
  why?: string,
): HypervisorError {
  const where = target === undefined ? operation : `${operation}(${target})`;
  const waited = why === undefined ? "" : ` (${why})`;
  if (stall !== undefined) {
    return new HypervisorError(
      `${where}: no answer within ${ms} ms${waited}, but this process was not running for ${stall.stalledMs} ms ` +
        `around the deadline (stopped, a long GC pause or starved of CPU), and none came in the ` +
        `grace after it ran again: whether libvirt answered in time is unknown`,
      { reason: "ProcessStalled", operation, target },
    );
  }
  return new HypervisorError(`${where}: no answer within ${ms} ms${waited}`, {
    reason: "Timeout",
    operation,
    target,
  });
}

function closedError(): HypervisorError {
  return new HypervisorError("the hypervisor connection was closed by its owner", {
    reason: "ConnectionLost",
    operation: "open",
  });
}
