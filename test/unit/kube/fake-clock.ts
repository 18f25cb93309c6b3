// A simulated clock for the work queue tests: time moves only when a test calls `advance`, and
// timers due in the advanced span run in order, each seeing `now()` at its own due time.
import type { Clock, ClockTimer } from "../../../src/kube/backoff.ts";

interface Pending {
  at: number;
  seq: number;
  fn: () => void;
  cancelled: boolean;
}

export class FakeClock implements Clock {
  private current = 0;
  private seq = 0;
  private pending: Pending[] = [];

  now(): number {
    return this.current;
  }

  setTimer(fn: () => void, ms: number): ClockTimer {
    const timer: Pending = {
      at: this.current + Math.max(0, ms),
      seq: this.seq++,
      fn,
      cancelled: false,
    };
    this.pending.push(timer);
    return { cancel: () => (timer.cancelled = true) };
  }

  /** Timers not yet run or cancelled. */
  get pendingTimers(): number {
    return this.pending.filter((t) => !t.cancelled).length;
  }

  advance(ms: number): void {
    const until = this.current + ms;
    for (;;) {
      this.pending = this.pending.filter((t) => !t.cancelled);
      const due = this.pending
        .filter((t) => t.at <= until)
        .sort((a, b) => a.at - b.at || a.seq - b.seq)[0];
      if (!due) break;
      this.pending.splice(this.pending.indexOf(due), 1);
      this.current = due.at;
      due.fn();
    }
    this.current = until;
  }
}
