// A guard in server mode (`guard-main --listen`), started by a test as its own process the way
// the DaemonSet's thaw-guard container runs it, so the test can signal it by pid. Its JSON log
// goes to a GuardLog, which outlives it.
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

import { guardCommand } from "../../../src/guard/guard-command.ts";
import { GuardLog, hasExited } from "./guard-log.ts";
import { when } from "./frozen-domain.ts";

export interface SidecarGuard {
  readonly pid: number;
  readonly socketPath: string;
  /** Resolves with the exit code (null when killed by a signal). */
  readonly exited: Promise<number | null>;
  /** Sends `signal` to this guard only, by pid, unless it is gone already. */
  kill(signal: NodeJS.Signals): void;
}

/** A folder for sockets, short enough for sun_path; removed by `dispose`. */
export class SocketDir {
  readonly path = mkdtempSync(join(tmpdir(), "vmsnap-sock-"));
  readonly socketPath = join(this.path, "guard.sock");
  dispose(): void {
    rmSync(this.path, { recursive: true, force: true });
  }
}

/** Starts a server-mode guard and waits until it listens (or throws with its log). */
export async function startSidecarGuard(
  uri: string,
  socketPath: string,
  log: GuardLog,
): Promise<SidecarGuard> {
  const { command, args } = guardCommand();
  const child = spawn(command, [...args, "--listen", socketPath, "--uri", uri], {
    // Its own process group, as in a container of its own: nothing aimed at ours reaches it.
    detached: true,
    stdio: ["ignore", "ignore", log.fd],
  });
  const pid = child.pid!;
  const exited = new Promise<number | null>((resolve) => child.once("exit", resolve));
  await when(
    `the guard (pid ${pid}) to listen on ${socketPath}`,
    () => {
      if (child.exitCode !== null || child.signalCode !== null)
        throw new Error(`the guard exited (${child.exitCode ?? child.signalCode}):\n${log.text()}`);
      return log.find("ready", { pid }).length > 0;
    },
    30_000,
  );
  return {
    pid,
    socketPath,
    exited,
    kill: (signal) => {
      if (!hasExited(pid)) process.kill(pid, signal);
    },
  };
}
