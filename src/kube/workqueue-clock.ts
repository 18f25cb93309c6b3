// Time as the work queue sees it: a monotonic "now" in milliseconds and one-shot timers. The
// queue takes it as a parameter so unit tests drive delays and backoff with a simulated clock
// instead of sleeping; production uses `realClock`.

/** A scheduled callback that can be cancelled before it runs. */
export interface ClockTimer {
  cancel(): void;
}

export interface Clock {
  /** Milliseconds on a monotonic scale (only differences are meaningful). */
  now(): number;
  /** Runs `fn` once, `ms` from now. */
  setTimer(fn: () => void, ms: number): ClockTimer;
}

/** Wall time from `performance.now()`: immune to the system clock being set back or forward. */
export const realClock: Clock = {
  now: () => performance.now(),
  setTimer(fn, ms) {
    const timer = setTimeout(fn, Math.max(0, ms));
    return { cancel: () => clearTimeout(timer) };
  },
};
