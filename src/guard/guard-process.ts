// One running guard process, seen from the controller: spawned detached so that it outlives
// the controller's process group, with pipes that never keep the controller alive, and with
// its replies decoded. Restarting and bookkeeping are thaw-guard.ts's job.
import { spawn, type ChildProcess } from "node:child_process";
import type { Socket } from "node:net";

import { toArgv, type GuardConfig } from "./guard-args.ts";
import { guardCommand } from "./guard-command.ts";
import { readReplies, type GuardLink, type LinkHandlers } from "./guard-link.ts";
import { encode, type Command } from "./protocol.ts";

/** Where the guard's JSON log goes: the controller's own stderr by default. A file descriptor
 *  keeps the log readable after the controller died (a pipe to it would not be). */
export type GuardStderr = "inherit" | "ignore" | number;

export interface GuardExit {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  /** Set when the process could not be started at all. */
  readonly error?: Error;
}

export interface GuardProcessOptions extends LinkHandlers {
  readonly config: GuardConfig;
  readonly stderr: GuardStderr;
}

export class GuardProcess implements GuardLink {
  readonly replaceWhenHung = true;

  private constructor(
    private readonly child: ChildProcess,
    readonly ready: Promise<void>,
    readonly ended: Promise<string>,
  ) {}

  get pid(): number | undefined {
    return this.child.pid;
  }

  /** Spawns a guard; it is killed when it misses startTimeoutMs or sends a bad reply. */
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
    // Writing to a guard that just died raises EPIPE here; its exit is handled via 'close'.
    child.stdin?.on("error", () => {});

    const ended = new Promise<string>((resolve) => {
      // 'close', not 'exit': it comes after the last reply was read from the guard's stdout.
      child.once("close", (code, signal) => resolve(describeExit({ code, signal })));
      child.once("error", (error) => resolve(describeExit({ code: null, signal: null, error })));
    });
    const kill = () => {
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
    };
    const ready = readReplies(
      child.stdout!,
      ended,
      {
        ...options,
        onBadReply: (line, error) => {
          options.onBadReply(line, error);
          kill();
        },
      },
      kill,
      {
        notReady: (ms) => `thaw guard (pid ${child.pid}) not ready within ${ms} ms`,
        endedEarly: (how) => `thaw guard exited before it was ready: ${how}`,
      },
    ).then(() => undefined);
    ready.catch(() => {});
    return new GuardProcess(child, ready, ended);
  }

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
