// The guard's armed entries and their timers: each entry fires once, at its deadline or when
// the guard drains (its controller is gone, or it is told to stop), unless disarmed first.
// Knows nothing of libvirt or of the wire: `fire` does the thawing.
import type { ArmCommand, FireCause } from "./protocol.ts";

export type Fire = (entry: ArmCommand, cause: FireCause) => Promise<void>;

// setTimeout's limit (~24.8 days); longer delays are chained.
const MAX_TIMER_MS = 2 ** 31 - 1;

interface Slot {
  readonly entry: ArmCommand;
  cancel(): void;
}

export class ThawScheduler {
  private readonly armed = new Map<string, Slot>();
  private readonly firing = new Set<Promise<void>>();

  /** `now` reads the wall clock the deadlines are written in (epoch ms). */
  constructor(
    private readonly fire: Fire,
    private readonly now: () => number = Date.now,
  ) {}

  /** Entries armed and not yet fired. */
  get size(): number {
    return this.armed.size;
  }

  /** Arms `entry`, replacing an armed entry of the same id. A deadline already past fires now. */
  arm(entry: ArmCommand): void {
    this.armed.get(entry.id)?.cancel();
    // The delay is taken once, here, and kept by the monotonic timer: a wall-clock step after
    // arming (NTP) must not postpone the thaw.
    const cancel = after(Math.max(0, entry.deadline - this.now()), () =>
      this.trigger(entry.id, "deadline"),
    );
    this.armed.set(entry.id, { entry, cancel });
  }

  /** Forgets `id`; false when it was not armed (never, or it fired already). */
  disarm(id: string): boolean {
    const slot = this.armed.get(id);
    if (slot === undefined) return false;
    slot.cancel();
    this.armed.delete(id);
    return true;
  }

  /** Fires every armed entry now and resolves once nothing is armed or firing, entries armed
   *  while it waits included: whoever drains is about to exit and must leave nothing behind. */
  async drain(cause: FireCause): Promise<void> {
    while (this.armed.size > 0 || this.firing.size > 0) {
      for (const id of [...this.armed.keys()]) this.trigger(id, cause);
      await Promise.allSettled([...this.firing]);
    }
  }

  private trigger(id: string, cause: FireCause): void {
    const slot = this.armed.get(id);
    if (slot === undefined) return;
    slot.cancel();
    this.armed.delete(id);
    const done: Promise<void> = this.fire(slot.entry, cause)
      .catch(() => {}) // fire reports its own failures; one must not stop the others
      .finally(() => this.firing.delete(done));
    this.firing.add(done);
  }
}

/** Runs `fn` after `ms` (any length), never before; returns a cancel function. Always from a
 *  timer, never synchronously, even when `ms` is 0. */
function after(ms: number, fn: () => void): () => void {
  // A timer counts from the event loop's cached time, which lags the real time by whatever ran
  // since the loop last woke: on a busy machine it fires milliseconds early. The monotonic clock
  // read here and on firing says what is really left, and the rest is waited out.
  const due = performance.now() + ms;
  let timer: NodeJS.Timeout;
  const wait = (left: number) => {
    timer = setTimeout(
      () => {
        const rest = due - performance.now();
        if (rest > 0) wait(rest);
        else fn();
      },
      Math.min(Math.ceil(left), MAX_TIMER_MS),
    );
  };
  wait(Math.max(0, ms));
  return () => clearTimeout(timer);
}
