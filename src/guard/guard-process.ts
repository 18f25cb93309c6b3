// One running guard process, seen from the controller: spawned detached so that it outlives
// the controller's process group, with pipes that never keep the controller alive, and with
// its replies decoded. Restarting and bookkeeping are thaw-guard.ts's job.
import { spawn, type ChildProcess } from "node:child_process";
import type { Socket } from "node:net";
import { createInterface } from "node:readline";

import { toArgv, type GuardConfig } from "./guard-args.ts";
import { guardCommand } from "./guard-command.ts";
import { decodeReply, encode, type Command, type Reply } from "./protocol.ts";

/** Where the guard's JSON log goes: the controller's own stderr by default. A file descriptor
 *  keeps the log readable after the controller died (a pipe to it would not be). */
export type GuardStderr = "inherit" | "ignore" | number;

export interface GuardExit {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  /** Set when the process could not be started at all. */
  readonly error?: Error;
}

export interface GuardProcessOptions {
  readonly config: GuardConfig;
  readonly stderr: GuardStderr;
  /** Longest wait for the guard's `ready`; it is killed when that passes. */
  readonly startTimeoutMs: number;
  /** Every reply after `ready`, in order. */
  readonly onReply: (reply: Reply) => void;
  /** A line that is not a reply: the guard is not what we think, and gets killed. */
  readonly onBadReply: (line: string, error: Error) => void;
}

export class GuardProcess {
  private constructor(
    private readonly child: ChildProcess,
    /** Resolves when the guard has its libvirt connection open; rejects if it exits or misses
     *  startTimeoutMs first. */
    readonly ready: Promise<void>,
    /** Resolves (never rejects) when the process has exited and its replies were all read, or
     *  it could not start. */
    readonly exited: Promise<GuardExit>,
  ) {}

  get pid(): number | undefined {
    return this.child.pid;
  }

  static spawn(options: GuardProcessOptions): GuardProcess {
    const { command, args } = guardCommand();
    const child = spawn(command, [...args, ...toArgv(options.config)], {
      // Its own session: a signal to the controller's process group does not reach it.
      detached: true,
      stdio: ["pipe", "pipe", options.stderr],
    });
    // None of these may keep the controller's event loop alive; a pending call's own timer does.
    child.unref();
    unrefStream(child.stdin);
    unrefStream(child.stdout);
    // Writing to a guard that just died raises EPIPE here; its exit is handled via 'exit'.
    child.stdin?.on("error", () => {});

    const exited = new Promise<GuardExit>((resolve) => {
      // 'close', not 'exit': it comes after the last reply was read from the guard's stdout.
      child.once("close", (code, signal) => resolve({ code, signal }));
      child.once("error", (error) => resolve({ code: null, signal: null, error }));
    });
    const ready = new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        child.kill("SIGKILL");
        reject(
          new Error(`thaw guard (pid ${child.pid}) not ready within ${options.startTimeoutMs} ms`),
        );
      }, options.startTimeoutMs);
      timer.unref();
      void exited.then((exit) => {
        clearTimeout(timer);
        reject(new Error(`thaw guard exited before it was ready: ${describeExit(exit)}`));
      });
      const lines = createInterface({ input: child.stdout!, crlfDelay: Infinity });
      lines.on("line", (line) => {
        let reply: Reply;
        try {
          reply = decodeReply(line);
        } catch (err) {
          options.onBadReply(line, err as Error);
          return;
        }
        if (reply.type === "ready") {
          clearTimeout(timer);
          resolve();
        } else {
          options.onReply(reply);
        }
      });
    });
    // Rejections are for whoever awaits ready; an unobserved one must not crash the controller.
    ready.catch(() => {});

    return new GuardProcess(child, ready, exited);
  }

  /** Sends one command; false when the pipe is already closed. */
  write(command: Command): boolean {
    const stdin = this.child.stdin;
    if (stdin === null || stdin.destroyed || !stdin.writable) return false;
    stdin.write(encode(command));
    return true;
  }

  /** Closes the guard's stdin: it thaws every armed guest and exits. */
  end(): void {
    this.child.stdin?.end();
  }

  /** Kills this guard (an unresponsive one): only ever our own child, by its pid. */
  kill(): void {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill("SIGKILL");
  }
}

export function describeExit(exit: GuardExit): string {
  if (exit.error) return exit.error.message;
  return exit.signal ? `signal ${exit.signal}` : `exit code ${exit.code}`;
}

function unrefStream(stream: unknown): void {
  // Child pipes are net.Sockets at run time, typed as plain streams.
  (stream as Partial<Pick<Socket, "unref">> | null)?.unref?.();
}
