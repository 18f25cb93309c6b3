// When a failed thaw is tried again: capped exponential backoff, pure. The guard retries a thaw
// for as long as it lives (a libvirtd restart may outlast any budget), so the schedule must
// start quick (a transient agent hiccup) and level off at a cap that keeps a guard waiting on a
// down libvirtd cheap yet quick to notice it is back.

/** How a failed thaw is retried. */
export interface ThawBackoff {
  /** Tries in all, first included; Infinity: until the thaw is confirmed (the guard). */
  readonly attempts: number;
  /** Wait before the second try; doubles per try up to maxRetryDelayMs. */
  readonly retryDelayMs: number;
  readonly maxRetryDelayMs: number;
}

/**
 * The wait after failed try number `attempt` (1-based), or undefined when no try is left.
 *
 * @example
 * retryDelayMs({ attempts: Infinity, retryDelayMs: 100, maxRetryDelayMs: 1_000 }, 5) // 1000
 * retryDelayMs({ attempts: 3, retryDelayMs: 100, maxRetryDelayMs: 1_000 }, 3)        // undefined
 */
export function retryDelayMs(backoff: ThawBackoff, attempt: number): number | undefined {
  if (attempt >= backoff.attempts) return undefined;
  // 2 ** attempt overflows to Infinity after ~1000 tries: Math.min still yields the cap.
  return Math.min(backoff.retryDelayMs * 2 ** (attempt - 1), backoff.maxRetryDelayMs);
}

/** Whether `attempts` means "until confirmed": the guard's policy. */
export function isUnbounded(backoff: Pick<ThawBackoff, "attempts">): boolean {
  return backoff.attempts === Number.POSITIVE_INFINITY;
}
