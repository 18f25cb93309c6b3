// Deadlines on calls that may never return. A libvirt call hung on a silent guest agent or a
// dead daemon cannot be cancelled: we stop waiting for it, and its thread is abandoned (the
// addon gives every call its own thread, so nothing else waits behind it).
//
// A deadline measures libvirt only while this process runs. Stopped (SIGSTOP, a debugger), in a
// long GC pause, or starved of CPU, it cannot read an answer libvirt already sent; and when it
// runs again Node fires due timers before it delivers finished work, so the deadline would
// "pass" first and blame libvirt for our own absence. So an expiring deadline first lets an
// answer already waiting be delivered (one turn of the event loop); and a deadline timer that
// fired much later than it was set for (the monotonic clock says the process was not running)
// gives the call a short grace, in which the addon's threads, stopped with the process, read an
// answer that came meanwhile. A call still without an answer then fails as a stall of this
// process (ProcessStalled), not as libvirt's Timeout: whether libvirt would have answered in
// time is unknown.

/** A timer this much later than it was set for means the process was not running. */
export const STALL_THRESHOLD_MS = 500;
/** After a stall, how long a call still has to deliver an answer that came meanwhile. */
export const STALL_GRACE_MS = 1_000;

/** How long this process was not running around a deadline (timer lateness, summed). */
export interface Stall {
  readonly stalledMs: number;
}

export interface DeadlineClock {
  /** Monotonic milliseconds. */
  readonly now: () => number;
}

const MONOTONIC: DeadlineClock = { now: () => performance.now() };

/**
 * `work`, or the error from `onTimeout()` once `ms` have passed, whichever comes first.
 * A result that arrives after the deadline goes to `onLate` (e.g. to close a connection
 * nobody will use); a late failure is dropped, the caller already has its error.
 * When the process stalled across the deadline, `onTimeout` gets the stall: the work had
 * less than `ms` of this process's time to be heard (see the header).
 *
 * @example
 * await withDeadline(conn.fsFreeze("vm", []), 5_000, (stall) => new Error(stall ? "stalled" : "freeze timed out"));
 */
export function withDeadline<T>(
  work: Promise<T>,
  ms: number,
  onTimeout: (stall?: Stall) => Error,
  onLate?: (value: T) => void,
  clock: DeadlineClock = MONOTONIC,
): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    let settled = false;
    let expired = false;
    let timer: NodeJS.Timeout | undefined;
    const arm = (delay: number, stalledMs: number) => {
      const due = clock.now() + delay;
      timer = setTimeout(() => {
        const late = clock.now() - due;
        const stalled = late > STALL_THRESHOLD_MS;
        // setImmediate runs after Node has delivered the I/O that is waiting, the addon's
        // finished calls included: an answer that is there wins over the deadline.
        setImmediate(() => {
          if (settled) return;
          // Not running at the deadline: the addon's threads may not have read the answer yet.
          if (stalled) return arm(STALL_GRACE_MS, stalledMs + late);
          expired = true;
          reject(onTimeout(stalledMs > 0 ? { stalledMs: Math.round(stalledMs) } : undefined));
        });
      }, delay);
    };
    arm(ms, 0);
    work.then(
      (value) => {
        settled = true;
        clearTimeout(timer);
        if (!expired) resolve(value);
        else onLate?.(value);
      },
      (err: unknown) => {
        settled = true;
        clearTimeout(timer);
        if (!expired) reject(err);
      },
    );
  });
}
