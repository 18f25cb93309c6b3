// Ctrl-C (or SIGTERM, SIGHUP) at any moment ends the demo cleanly. A signal never tears the stack
// down under a running step: it marks the session interrupted, waits stop at once, a bring-up step
// is allowed to finish (so what it created is registered for removal), and then everything
// registered is removed, in the order dependencies require (CLEANUP_ORDER). A second signal only says what is happening; a third quits
// at once after the last-resort actions (the next `make demo` removes whatever is left).
import { runTeardowns } from "../../test/support/teardown.ts";
import { event, line } from "./say.ts";

export class Interrupted extends Error {
  constructor(readonly signalName: NodeJS.Signals) {
    super(`interrupted by ${signalName}`);
    this.name = "Interrupted";
  }
}

interface Cleanup {
  readonly what: string;
  readonly order: number;
  readonly fn: () => Promise<string | void>;
}

/**
 * When each part goes: users of a part before the part (the controller thaws before the guest
 * goes, the guest lets go of its RBD disk before Ceph stops), whatever order they started in.
 */
export const CLEANUP_ORDER = {
  snapshots: 0,
  watch: 1,
  controller: 2,
  guest: 3,
  ceph: 4,
  controlPlane: 5,
  folder: 6,
  harnesses: 7,
} as const;

const SIGNALS: readonly NodeJS.Signals[] = ["SIGINT", "SIGTERM", "SIGHUP"];

export class Session {
  private readonly abort = new AbortController();
  private readonly cleanups: Cleanup[] = [];
  private readonly lastResorts: Array<() => void> = [];
  private signals = 0;
  private cleaning = false;

  constructor() {
    for (const name of SIGNALS) process.on(name, () => this.onSignal(name));
  }

  get interrupted(): boolean {
    return this.abort.signal.aborted;
  }

  /** Throws Interrupted once a signal came; called between steps. */
  check(): void {
    if (this.interrupted) throw this.abort.signal.reason as Interrupted;
  }

  /** `promise`, or Interrupted as soon as a signal arrives: for waits that create nothing. */
  interruptible<T>(promise: Promise<T>): Promise<T> {
    const signal = this.abort.signal;
    if (signal.aborted) return Promise.reject(signal.reason as Error);
    return new Promise<T>((resolve, reject) => {
      const onAbort = () => reject(signal.reason as Error);
      signal.addEventListener("abort", onAbort, { once: true });
      promise.then(
        (value) => {
          signal.removeEventListener("abort", onAbort);
          resolve(value);
        },
        (err: unknown) => {
          signal.removeEventListener("abort", onAbort);
          reject(err as Error);
        },
      );
    });
  }

  /** Registers clean-up to run at `order` (CLEANUP_ORDER); `fn` may return a detail to print. */
  onCleanup(what: string, order: number, fn: () => Promise<string | void>): void {
    this.cleanups.push({ what, order, fn });
  }

  /** Something synchronous worth doing even when the user insists on quitting at once. */
  onLastResort(fn: () => void): void {
    this.lastResorts.push(fn);
  }

  /** Runs every clean-up once; failures are printed and do not stop the others. */
  async cleanup(): Promise<void> {
    if (this.cleaning) return;
    this.cleaning = true;
    // Stable sort, then newest first within one order.
    const queue = this.cleanups.splice(0).reverse();
    queue.sort((a, b) => a.order - b.order);
    for (const { what, fn } of queue) {
      const t0 = Date.now();
      try {
        const detail = await fn();
        event(
          `${what.padEnd(40)} ${`${Date.now() - t0} ms`.padStart(8)}${detail ? `  ${detail}` : ""}`,
        );
      } catch (err) {
        event(`${what}: FAILED: ${(err as Error).message.split("\n")[0]}`);
      }
    }
    // Whatever the shared harnesses registered themselves (the libvirtd lease, and anything a
    // step created before it was interrupted) goes last.
    await runTeardowns();
  }

  private onSignal(name: NodeJS.Signals): void {
    this.signals += 1;
    if (this.signals === 1) {
      line();
      line(
        `*** ${name}: letting the steps under way finish, then removing everything the demo started (Ctrl-C twice more quits at once)`,
      );
      this.abort.abort(new Interrupted(name));
      return;
    }
    if (this.signals === 2) {
      line(`*** still cleaning up; one more ${name} quits now and leaves the rest to the next run`);
      return;
    }
    for (const fn of this.lastResorts) {
      try {
        fn();
      } catch {
        // best effort: we are quitting
      }
    }
    line(`*** quitting without cleaning up; the next \`make demo\` removes what is left`);
    process.exit(130);
  }
}
