// One controller's conversation with the guard: the commands of one stream (the guard's stdin,
// or one connection to its socket) and the entries they armed. Entries belong to the stream
// that armed them, so when that stream ends — its controller died — exactly its guests are
// thawed, and another controller's are left alone.
import { GuardState } from "./guard-state.ts";
import type { Level, Log } from "./log.ts";
import {
  decodeCommand,
  ProtocolError,
  type ArmCommand,
  type FireCause,
  type Reply,
} from "./protocol.ts";
import { ThawScheduler } from "./scheduler.ts";
import { thawConfirmed, type ThawResult } from "../hypervisor/thaw.ts";

export interface SessionOptions {
  /** Thaws the entry's guest (resuming it first when the entry asks); calls `onRetry` after
   *  each failed try it will try again. */
  readonly thaw: (entry: ArmCommand, onRetry: () => void) => Promise<ThawResult>;
  /** Sends a reply to this session's controller; never throws (a reader that is gone misses it). */
  readonly send: (reply: Reply) => void;
  readonly log: Log;
  /** True once the guard is stopping: it will not be there to fire a new entry's deadline. */
  readonly stopping: () => boolean;
  /** Added to every log line of this session, e.g. its connection number. */
  readonly fields?: Readonly<Record<string, unknown>>;
  /** The guard-wide state this session counts in and reports; default one of its own. */
  readonly state?: GuardState;
}

export class GuardSession {
  private readonly scheduler: ThawScheduler;
  private readonly state: GuardState;
  private readonly unsubscribe: Array<() => void>;

  constructor(private readonly o: SessionOptions) {
    this.scheduler = new ThawScheduler((entry, cause) => this.fire(entry, cause));
    this.state = o.state ?? new GuardState();
    this.unsubscribe = [
      this.state.register(this, () => this.scheduler.size),
      this.state.subscribe(() => this.sendState()),
    ];
  }

  /** Tells this session's controller the guard's state (after `ready`, and on every change). */
  sendState(): void {
    this.o.send(this.state.report());
  }

  /** Stops reporting to this session's controller (its connection is gone). Its thaws under
   *  way go on and stay counted. */
  close(): void {
    for (const unsubscribe of this.unsubscribe.splice(0)) unsubscribe();
  }

  /** Entries armed and not yet fired or disarmed. */
  get armed(): number {
    return this.scheduler.size;
  }

  /** Handles one command line; answers it with exactly one reply, as the client expects. */
  receive(line: string): void {
    if (line.trim() === "") return;
    let command;
    try {
      command = decodeCommand(line);
    } catch (err) {
      if (!(err instanceof ProtocolError)) throw err;
      this.log("error", "rejected command", { error: err.message });
      this.o.send({ type: "rejected", error: err.message });
      return;
    }
    if (command.type === "arm") this.arm(command);
    else {
      const wasArmed = this.scheduler.disarm(command.id);
      this.o.send({ type: "ack", op: "disarm", id: command.id });
      this.log("info", "disarmed", { id: command.id, wasArmed });
    }
    this.state.changed();
  }

  /** Fires every entry of this session now; resolves when all are thawed (or failed). */
  drain(cause: FireCause): Promise<void> {
    return this.scheduler.drain(cause);
  }

  private arm(command: ArmCommand): void {
    const { id, domain, deadline, resumeIfPaused } = command;
    if (this.o.stopping()) {
      // An ack would let the caller freeze a guest that no deadline covers any more: refuse.
      // It may also be a re-arm of a guest that is frozen already, so thaw that one now.
      this.scheduler.arm(command);
      void this.scheduler.drain("terminated");
      this.o.send({ type: "rejected", error: "the thaw guard is stopping" });
      this.log("warn", "refused an arm while stopping; thawing its guest now", { id, domain });
      return;
    }
    if (this.state.thawing(domain)) {
      // The guard has not confirmed its thaw of this domain yet (libvirtd down, say) and keeps
      // trying: a freeze now would be undone by that thaw's next try, mid-snapshot. Refused,
      // the controller does not freeze, and waits.
      this.o.send({ type: "rejected", error: `the thaw guard is still thawing ${domain}` });
      this.log("warn", "refused an arm: a thaw of its domain is not confirmed yet", { id, domain });
      return;
    }
    this.scheduler.arm(command);
    this.o.send({ type: "ack", op: "arm", id });
    this.log("info", "armed", {
      id,
      domain,
      deadline,
      resumeIfPaused,
      inMs: deadline - Date.now(),
    });
  }

  private async fire(entry: ArmCommand, cause: FireCause): Promise<void> {
    const started = Date.now();
    const token = {};
    this.state.thawStarted(token, entry);
    let tries = 1;
    const onRetry = () => {
      this.state.thawRetried(token);
      // Logged at tries 2, 4, 8, ...: a long libvirtd outage stays visible without flooding.
      if ((++tries & (tries - 1)) === 0)
        this.log("warn", "thaw not confirmed yet; still trying", {
          id: entry.id,
          domain: entry.domain,
          tries,
          overdueMs: Date.now() - entry.deadline,
        });
    };
    let thaw: ThawResult;
    try {
      thaw = await this.o.thaw(entry, onRetry);
    } finally {
      this.state.thawEnded(token);
    }
    // The error object itself stays here: the reply and the log carry its typed reason.
    const { lastError: _lastError, ...result } = thaw;
    const at = Date.now();
    this.log(thawConfirmed(result.outcome) ? "info" : "error", "fired", {
      id: entry.id,
      domain: entry.domain,
      cause,
      ...result,
      // How far past the deadline the thaw began (negative when fired early on drain).
      lateMs: started - entry.deadline,
      tookMs: Date.now() - started,
    });
    this.o.send({
      type: "thawed",
      id: entry.id,
      domain: entry.domain,
      deadline: entry.deadline,
      cause,
      ...result,
      at,
    });
  }

  private log(level: Level, msg: string, fields: Record<string, unknown>): void {
    this.o.log(level, msg, { ...this.o.fields, ...fields });
  }
}
