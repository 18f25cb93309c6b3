// Libvirt calls spread over a few connections, one call at a time on each. libvirt 9.0's client
// crashed (SIGSEGV in its RPC event loop) when libvirtd stopped and came back while several calls
// waited on one connection: measured for the thaw guard, and for the controller's connection with
// four calls at a time during a 20 s stop, 2 crashes in 3 runs (docs/libvirt-facts.md). One call
// per connection never builds that state. Several connections keep a slow or hung call (a guest
// agent that never answers, a memory save) from holding up the others' freezes and thaws.
//
// A call takes an idle connection (the first one, so sequential calls all use the first), or
// opens another while fewer than `max` exist, or waits in line within its own deadline for one to
// come free, and is never sent if that deadline passes while it waits. A connection whose call
// outlived its deadline stays taken until libvirt returns that call: that, not the deadline, is
// when the connection carries nothing. So with `max` calls hung in libvirt, further calls wait.
//
// Event registrations stay on the first connection (link.ts); they are made at subscription and
// on reconnect, and are the one RPC that may overlap a call there.
import { withDeadline } from "./deadline.ts";
import type { Operation } from "./errors.ts";
import { timeoutError, type Link, type LinkOptions } from "./link.ts";
import type { NativeConnection } from "./native.ts";

interface Lane {
  readonly link: Link;
  busy: boolean;
}

interface Waiter {
  readonly take: (lane: Lane) => void;
  gaveUp: boolean;
}

export class Lanes {
  private readonly lanes: Lane[];
  private readonly waiting: Waiter[] = [];

  /**
   * @param first the connection that also carries event registrations
   * @param max at most this many connections (1: every call waits for the one before it)
   * @param another a new, not yet opened connection (Links open on their first call)
   */
  constructor(
    first: Link,
    readonly max: number,
    private readonly another: () => Link,
  ) {
    if (!Number.isInteger(max) || max < 1) throw new RangeError(`max connections ${max} < 1`);
    this.lanes = [{ link: first, busy: false }];
  }

  get first(): Link {
    return this.lanes[0]!.link;
  }

  get options(): LinkOptions {
    return this.first.options;
  }

  /** Runs `run` on a connection of its own; all of it, waiting included, within `timeoutMs`. */
  call<T>(
    operation: Operation,
    target: string | undefined,
    timeoutMs: number | undefined,
    run: (conn: NativeConnection) => Promise<T>,
  ): Promise<T> {
    const ms = timeoutMs ?? this.options.callTimeoutMs;
    // At once when a connection is free: the call's deadline starts now, in this very turn, so
    // a process stopped right after the call sees the deadline pass late, not start late.
    const free = this.take();
    if (free !== undefined) return this.send(free, operation, target, ms, run);
    const started = performance.now();
    return this.wait(operation, target, ms).then((lane) => {
      const left = ms - (performance.now() - started);
      if (left < 1) {
        // A connection came free just as the deadline passed: the call is not sent.
        this.release(lane);
        throw timeoutError(operation, target, ms);
      }
      return this.send(lane, operation, target, left, run);
    });
  }

  /** Closes every connection; hung calls are abandoned. */
  async close(): Promise<void> {
    const [first, ...others] = this.lanes.map((l) => l.link);
    await Promise.all(others.map((link) => link.close().catch(() => {})));
    await first!.close();
  }

  /** An idle connection, or a new one while fewer than `max` exist, taken; or none. */
  private take(): Lane | undefined {
    const idle = this.lanes.find((l) => !l.busy);
    if (idle !== undefined) {
      idle.busy = true;
      return idle;
    }
    if (this.lanes.length >= this.max) return undefined;
    const lane: Lane = { link: this.another(), busy: true };
    this.lanes.push(lane);
    return lane;
  }

  /** The next connection to come free, in line, within `ms`. */
  private wait(operation: Operation, target: string | undefined, ms: number): Promise<Lane> {
    let waiter!: Waiter;
    const turn = new Promise<Lane>((take) => (waiter = { take, gaveUp: false }));
    this.waiting.push(waiter);
    return withDeadline(turn, ms, (stall) => {
      waiter.gaveUp = true;
      return timeoutError(
        operation,
        target,
        ms,
        stall,
        `all ${this.max} libvirt connections carry calls libvirt has not returned`,
      );
    });
  }

  private send<T>(
    lane: Lane,
    operation: Operation,
    target: string | undefined,
    ms: number,
    run: (conn: NativeConnection) => Promise<T>,
  ): Promise<T> {
    let sent = false;
    const result = lane.link.call(operation, target, ms, (conn) => {
      sent = true;
      // Free once libvirt returned the call, before its caller hears of it: a caller's next
      // call then finds this connection idle.
      return run(conn).finally(() => this.release(lane));
    });
    // Never sent (no connection could be opened, or the deadline passed first): free now.
    result.catch(() => {
      if (!sent) this.release(lane);
    });
    return result;
  }

  private release(lane: Lane): void {
    for (let next = this.waiting.shift(); next !== undefined; next = this.waiting.shift()) {
      if (!next.gaveUp) return next.take(lane);
    }
    lane.busy = false;
  }
}
