// Waiting before trying again, and the clock it is measured on. One exponential backoff serves
// both users: the informer's reconnects to the API server (with jitter: after an apiserver
// restart every agent on every host reconnects at once, and without it they would keep retrying
// in lockstep) and the work queue's per-key retries (without jitter, as client-go's). The work
// queue's default limiter mirrors controller-runtime's `DefaultTypedControllerRateLimiter`: the
// larger of a per-key exponential backoff (5 ms doubling to 1000 s) and an overall token bucket
// (10 retries/s, burst 100), so one failing key backs off on its own while a storm of failing
// keys cannot hammer libvirt or the API server.

// ---- time -------------------------------------------------------------------------------------
// A monotonic "now" in milliseconds and one-shot timers. The work queue and its rate limiter take
// it as a parameter so unit tests drive delays and backoff with a simulated clock instead of
// sleeping; production uses `realClock`.

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

/**
 * Node's longest timer: a longer delay (a monthly schedule's next run is ~30 days away) is taken
 * as 1 ms, so a caller re-arming until its time comes would spin. Clamped, it wakes early once
 * in ~24.8 days and re-arms.
 */
export const MAX_TIMER_MS = 2 ** 31 - 1;

/** Wall time from `performance.now()`: immune to the system clock being set back or forward. */
export const realClock: Clock = {
  now: () => performance.now(),
  setTimer(fn, ms) {
    const timer = setTimeout(fn, Math.min(MAX_TIMER_MS, Math.max(0, ms)));
    return { cancel: () => clearTimeout(timer) };
  },
};

// ---- exponential backoff ---------------------------------------------------------------------

export interface BackoffOptions {
  /** First delay (default 100 ms). */
  initialMs?: number;
  /** Longest delay (default 30 s). */
  maxMs?: number;
  /** Growth per attempt (default 2). */
  factor?: number;
  /** Fraction of each delay taken off at random, 0..1 (default 0.5: a delay d lies in [d/2, d]). */
  jitter?: number;
  /** Source of randomness in [0, 1); tests pass a fixed one. */
  random?: () => number;
}

/**
 * @example
 * const backoff = new ExponentialBackoff({ initialMs: 100, maxMs: 30_000 });
 * await sleep(backoff.next()); // 50..100 ms, then 100..200 ms, ... up to 15..30 s
 * backoff.reset();             // after a healthy connection
 */
export class ExponentialBackoff {
  private readonly initialMs: number;
  private readonly maxMs: number;
  private readonly factor: number;
  private readonly jitter: number;
  private readonly random: () => number;
  private attempt = 0;

  constructor(options: BackoffOptions = {}) {
    this.initialMs = options.initialMs ?? 100;
    this.maxMs = options.maxMs ?? 30_000;
    this.factor = options.factor ?? 2;
    this.jitter = options.jitter ?? 0.5;
    this.random = options.random ?? Math.random;
  }

  /** Failures since the last reset. */
  get attempts(): number {
    return this.attempt;
  }

  /** The delay before the next attempt; each call counts one more failure. */
  next(): number {
    // factor^attempt overflows to Infinity long after it passed maxMs; min() handles both.
    const base = Math.min(this.initialMs * this.factor ** this.attempt, this.maxMs);
    this.attempt += 1;
    return Math.round(base * (1 - this.jitter * this.random()));
  }

  reset(): void {
    this.attempt = 0;
  }
}

// ---- the work queue's rate limiters ----------------------------------------------------------

export interface RateLimiter {
  /** The delay before `key` may be retried; counts as one more failure of `key`. */
  when(key: string): number;
  /** Clears the failure history of `key` (it succeeded, or was deleted). */
  forget(key: string): void;
  /** Failures of `key` since it was last forgotten. */
  numRequeues(key: string): number;
}

/** Per-key backoff: `baseMs * 2^failures`, capped at `maxMs`, without jitter. */
export class ItemExponentialRateLimiter implements RateLimiter {
  private readonly backoffs = new Map<string, ExponentialBackoff>();

  constructor(
    private readonly baseMs: number,
    private readonly maxMs: number,
  ) {}

  when(key: string): number {
    let backoff = this.backoffs.get(key);
    if (!backoff) {
      backoff = new ExponentialBackoff({ initialMs: this.baseMs, maxMs: this.maxMs, jitter: 0 });
      this.backoffs.set(key, backoff);
    }
    return backoff.next();
  }

  forget(key: string): void {
    this.backoffs.delete(key);
  }

  numRequeues(key: string): number {
    return this.backoffs.get(key)?.attempts ?? 0;
  }
}

/**
 * A token bucket shared by all keys: `burst` retries at once, then `perSecond`. Like Go's
 * `rate.Limiter.Reserve`, a retry always gets a slot; when the bucket is empty the slot lies in
 * the future and the delay says how far.
 */
export class BucketRateLimiter implements RateLimiter {
  private tokens: number;
  private last: number;

  constructor(
    private readonly perSecond: number,
    private readonly burst: number,
    private readonly clock: Clock,
  ) {
    this.tokens = burst;
    this.last = clock.now();
  }

  when(_key: string): number {
    const now = this.clock.now();
    this.tokens = Math.min(this.burst, this.tokens + ((now - this.last) * this.perSecond) / 1000);
    this.last = now;
    this.tokens -= 1;
    return this.tokens >= 0 ? 0 : (-this.tokens * 1000) / this.perSecond;
  }

  forget(_key: string): void {}

  numRequeues(_key: string): number {
    return 0;
  }
}

/** The longest delay any of `limiters` asks for; failure counts come from the largest. */
export class MaxOfRateLimiter implements RateLimiter {
  private readonly limiters: readonly RateLimiter[];

  constructor(...limiters: RateLimiter[]) {
    this.limiters = limiters;
  }

  when(key: string): number {
    // Every limiter must see the failure, so no short-circuit.
    return Math.max(...this.limiters.map((l) => l.when(key)));
  }

  forget(key: string): void {
    for (const l of this.limiters) l.forget(key);
  }

  numRequeues(key: string): number {
    return Math.max(...this.limiters.map((l) => l.numRequeues(key)));
  }
}

export const DEFAULT_BASE_DELAY_MS = 5;
export const DEFAULT_MAX_DELAY_MS = 1_000_000;

/**
 * controller-runtime's default: per-key 5 ms → 1000 s, overall 10/s with a burst of 100.
 *
 * @example
 * const limiter = defaultControllerRateLimiter(realClock);
 * limiter.when("ns/a"); // 5
 * limiter.when("ns/a"); // 10
 */
export function defaultControllerRateLimiter(clock: Clock): RateLimiter {
  return new MaxOfRateLimiter(
    new ItemExponentialRateLimiter(DEFAULT_BASE_DELAY_MS, DEFAULT_MAX_DELAY_MS),
    new BucketRateLimiter(10, 100, clock),
  );
}
