// Deadlines on calls that may never return. A libvirt call hung on a silent guest agent or a
// dead daemon cannot be cancelled: we stop waiting for it, and its thread is abandoned (the
// addon gives every call its own thread, so nothing else waits behind it).

/**
 * `work`, or the error from `onTimeout()` once `ms` have passed, whichever comes first.
 * A result that arrives after the deadline goes to `onLate` (e.g. to close a connection
 * nobody will use); a late failure is dropped, the caller already has its Timeout.
 *
 * @example
 * await withDeadline(conn.fsFreeze("vm", []), 5_000, () => new Error("freeze timed out"));
 */
export function withDeadline<T>(
  work: Promise<T>,
  ms: number,
  onTimeout: () => Error,
  onLate?: (value: T) => void,
): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    let expired = false;
    const timer = setTimeout(() => {
      expired = true;
      reject(onTimeout());
    }, ms);
    work.then(
      (value) => {
        clearTimeout(timer);
        if (!expired) resolve(value);
        else onLate?.(value);
      },
      (err: unknown) => {
        clearTimeout(timer);
        if (!expired) reject(err);
      },
    );
  });
}
