// The agent's clock: epoch milliseconds that never go backwards. Deadlines inside the frozen
// window are judged with it, so a wall-clock step (NTP, an administrator's `date -s`) can
// neither cut a freeze short nor stretch it; it may drift from the wall clock by the steps
// made since the process started, which is harmless for the timestamps written in status.

const origin = performance.timeOrigin;

/**
 * Now, in whole epoch ms, from the monotonic clock. Whole, because deadlines derived from it
 * cross the thaw guard's protocol, which takes integer milliseconds only.
 */
export function monotonicNow(): number {
  return Math.floor(origin + performance.now());
}
