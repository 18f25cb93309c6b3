// How long a failed key waits before it is retried. The default mirrors controller-runtime's
// `DefaultTypedControllerRateLimiter`: the larger of a per-key exponential backoff (5 ms doubling
// to 1000 s) and an overall token bucket (10 retries/s, burst 100), so one failing key backs off
// on its own while a storm of failing keys cannot hammer libvirt or the API server.
import type { Clock } from "./workqueue-clock.ts";

export interface RateLimiter {
  /** The delay before `key` may be retried; counts as one more failure of `key`. */
  when(key: string): number;
  /** Clears the failure history of `key` (it succeeded, or was deleted). */
  forget(key: string): void;
  /** Failures of `key` since it was last forgotten. */
  numRequeues(key: string): number;
}

/** Per-key backoff: `baseMs * 2^failures`, capped at `maxMs`. */
export class ItemExponentialRateLimiter implements RateLimiter {
  private readonly failures = new Map<string, number>();

  constructor(
    private readonly baseMs: number,
    private readonly maxMs: number,
  ) {}

  when(key: string): number {
    const failures = this.failures.get(key) ?? 0;
    this.failures.set(key, failures + 1);
    // 2^failures overflows to Infinity long after it passed maxMs; min() handles both.
    return Math.min(this.baseMs * 2 ** failures, this.maxMs);
  }

  forget(key: string): void {
    this.failures.delete(key);
  }

  numRequeues(key: string): number {
    return this.failures.get(key) ?? 0;
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
