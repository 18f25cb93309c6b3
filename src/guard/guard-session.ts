// One controller's conversation with the guard: the commands of one stream (the guard's stdin,
// or one connection to its socket) and the entries they armed. Entries belong to the stream
// that armed them, so when that stream ends — its controller died — exactly its guests are
// thawed, and another controller's are left alone.
import type { Level, Log } from "./log.ts";
import {
  decodeCommand,
  ProtocolError,
  type ArmCommand,
  type FireCause,
  type Reply,
} from "./protocol.ts";
import { ThawScheduler } from "./scheduler.ts";
import type { ThawResult } from "../hypervisor/thaw.ts";

export interface SessionOptions {
  /** Thaws the entry's guest (resuming it first when the entry asks). */
  readonly thaw: (entry: ArmCommand) => Promise<ThawResult>;
  /** Sends a reply to this session's controller; never throws (a reader that is gone misses it). */
  readonly send: (reply: Reply) => void;
  readonly log: Log;
  /** True once the guard is stopping: it will not be there to fire a new entry's deadline. */
  readonly stopping: () => boolean;
  /** Added to every log line of this session, e.g. its connection number. */
  readonly fields?: Readonly<Record<string, unknown>>;
}

export class GuardSession {
  private readonly scheduler: ThawScheduler;

  constructor(private readonly o: SessionOptions) {
    this.scheduler = new ThawScheduler((entry, cause) => this.fire(entry, cause));
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
    // The error object itself stays here: the reply and the log carry its typed reason.
    const { lastError: _lastError, ...result } = await this.o.thaw(entry);
    const at = Date.now();
    this.log(result.outcome === "failed" ? "error" : "info", "fired", {
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
