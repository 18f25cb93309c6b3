// What the guard is doing, guard-wide: how many entries wait for their deadline, which thaws are
// under way (fired, not yet confirmed), and how many failed tries were retried. The guard is a
// process of its own with no metrics endpoint (a sidecar needs no network); it reports this
// state to its controllers in `state` replies, which the controller exports as metrics.
//
// Sessions (one per controller connection) register their armed counts and their thaws here,
// so a connection that is gone still counts: its thaws go on after it. Knows no libvirt, no wire.
import type { StateReply } from "./protocol.ts";

/** A thaw under way: fired at or before its deadline, not yet confirmed. */
interface Underway {
  readonly domain: string;
  readonly deadline: number;
  attempts: number;
}

/** While a thaw is under way, the state is reported this often even when nothing changes: an
 *  entry drained before its deadline becomes overdue without any event. */
const REFRESH_MS = 5_000;

export class GuardState {
  private readonly armedBy = new Map<object, () => number>();
  private readonly underway = new Map<object, Underway>();
  private readonly listeners = new Set<() => void>();
  private retries = 0;
  private refresh: NodeJS.Timeout | undefined;

  /** `now` reads the wall clock deadlines are written in. */
  constructor(private readonly now: () => number = Date.now) {}

  /** Counts `armed()` in the state while `owner` is registered. */
  register(owner: object, armed: () => number): () => void {
    this.armedBy.set(owner, armed);
    return () => {
      this.armedBy.delete(owner);
      this.changed();
    };
  }

  /** Calls `listener` after each change; returns the unsubscribe. */
  subscribe(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** A thaw began; `token` names it until `thawEnded(token)`. */
  thawStarted(token: object, entry: { domain: string; deadline: number }): void {
    this.underway.set(token, { domain: entry.domain, deadline: entry.deadline, attempts: 1 });
    this.keepRefreshing();
    this.changed();
  }

  /** A try of the thaw `token` failed and will be tried again. */
  thawRetried(token: object): void {
    const thaw = this.underway.get(token);
    if (thaw === undefined) return;
    thaw.attempts++;
    this.retries++;
    this.changed();
  }

  thawEnded(token: object): void {
    this.underway.delete(token);
    this.changed();
  }

  /** Whether a thaw of `domain` is under way: a new freeze of it would race that thaw. */
  thawing(domain: string): boolean {
    for (const thaw of this.underway.values()) if (thaw.domain === domain) return true;
    return false;
  }

  /** Tells the listeners that something counted elsewhere (an armed count) changed. */
  changed(): void {
    for (const listener of [...this.listeners]) listener();
  }

  /** The state as the controller is told it. */
  report(): StateReply {
    let armed = 0;
    for (const count of this.armedBy.values()) armed += count();
    const now = this.now();
    let overdue = 0;
    for (const thaw of this.underway.values()) if (thaw.deadline <= now) overdue++;
    return { type: "state", armed, thawing: this.underway.size, overdue, retries: this.retries };
  }

  private keepRefreshing(): void {
    if (this.refresh !== undefined) return;
    this.refresh = setInterval(() => {
      if (this.underway.size === 0) {
        clearInterval(this.refresh);
        this.refresh = undefined;
      }
      this.changed();
    }, REFRESH_MS);
    // Reporting alone is no reason to keep the guard alive.
    this.refresh.unref();
  }
}
