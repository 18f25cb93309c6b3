// Exponential backoff with jitter for reconnecting to the API server. Jitter matters here: after
// an apiserver restart every agent on every host reconnects at once, and without it they would
// keep retrying in lockstep.

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
    const base = Math.min(this.initialMs * this.factor ** this.attempt, this.maxMs);
    this.attempt += 1;
    return Math.round(base * (1 - this.jitter * this.random()));
  }

  reset(): void {
    this.attempt = 0;
  }
}
