// Starting and stopping the real services the tests need, by pid file only.
// A service writes `<name>.pid` into its run folder; a later run that finds the file stops that
// pid (after checking it is still the program we started), so leftovers of a crashed run never
// block the next one, and nothing is ever killed by name.
import { spawn, type ChildProcess } from "node:child_process";
import { closeSync, existsSync, openSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";

export interface Daemon {
  readonly name: string;
  readonly pid: number;
  readonly logFile: string;
  readonly child: ChildProcess;
  stop(signal?: NodeJS.Signals, graceMs?: number): Promise<void>;
}

export interface StartOptions {
  /** Folder holding `<name>.pid` and `<name>.log`. */
  runDir: string;
  env?: NodeJS.ProcessEnv;
  cwd?: string;
}

/** Starts `command` detached in its own process group, logging to `<runDir>/<name>.log`. */
export async function startDaemon(
  name: string,
  command: string,
  args: readonly string[],
  options: StartOptions,
): Promise<Daemon> {
  await stopLeftover(options.runDir, name);
  const logFile = join(options.runDir, `${name}.log`);
  const log = openSync(logFile, "a");
  const child = spawn(command, args, {
    cwd: options.cwd,
    env: options.env ?? process.env,
    stdio: ["ignore", log, log],
    detached: true,
  });
  closeSync(log);
  child.unref();
  const pid = await new Promise<number>((resolve, reject) => {
    child.once("spawn", () => resolve(child.pid!));
    child.once("error", reject);
  });
  const pidFile = join(options.runDir, `${name}.pid`);
  writeFileSync(pidFile, `${pid}\n${command}\n`);
  return {
    name,
    pid,
    logFile,
    child,
    async stop(signal: NodeJS.Signals = "SIGTERM", graceMs = 10_000) {
      await stopPid(pid, command, signal, graceMs);
      rmSync(pidFile, { force: true });
    },
  };
}

/** Stops the process recorded in `<runDir>/<name>.pid`, if it is still the one we started. */
export async function stopLeftover(runDir: string, name: string): Promise<void> {
  const pidFile = join(runDir, `${name}.pid`);
  if (!existsSync(pidFile)) return;
  const [pidText, command] = readFileSync(pidFile, "utf8").split("\n");
  const pid = Number(pidText);
  if (Number.isInteger(pid) && pid > 1 && command) await stopPid(pid, command, "SIGTERM", 5_000);
  rmSync(pidFile, { force: true });
}

/**
 * The pid recorded in `<runDir>/<name>.pid` when that process is still alive and still the
 * program we started, else undefined. Lets a harness reuse a daemon another run left running.
 */
export function runningPid(runDir: string, name: string): number | undefined {
  const pidFile = join(runDir, `${name}.pid`);
  if (!existsSync(pidFile)) return undefined;
  const [pidText, command] = readFileSync(pidFile, "utf8").split("\n");
  const pid = Number(pidText);
  if (!Number.isInteger(pid) || pid <= 1 || !command) return undefined;
  return isOurs(pid, command) && !isZombie(pid) ? pid : undefined;
}

/** The executable path of a live pid, or undefined when it is gone. */
function executableOf(pid: number): string | undefined {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0")[0];
  } catch {
    return undefined;
  }
}

function isOurs(pid: number, command: string): boolean {
  const exe = executableOf(pid);
  // A pid reused by an unrelated program must not be signalled.
  return exe !== undefined && exe !== "" && (exe === command || exe.endsWith(`/${command}`));
}

async function stopPid(
  pid: number,
  command: string,
  signal: NodeJS.Signals,
  graceMs: number,
): Promise<void> {
  if (!isOurs(pid, command)) return;
  try {
    process.kill(pid, signal);
  } catch {
    return;
  }
  const deadline = Date.now() + graceMs;
  while (Date.now() < deadline) {
    if (!isOurs(pid, command) || isZombie(pid)) return;
    await sleep(50);
  }
  try {
    process.kill(pid, "SIGKILL");
  } catch {
    // already gone
  }
}

function isZombie(pid: number): boolean {
  try {
    return / Z /.test(readFileSync(`/proc/${pid}/stat`, "utf8"));
  } catch {
    return true;
  }
}

/** Whether a pid exists (EPERM still means it does). */
export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
}

/** The last `lines` lines of a daemon's log, for an error message. */
export function logTail(file: string, lines: number): string {
  try {
    return readFileSync(file, "utf8").trimEnd().split("\n").slice(-lines).join("\n");
  } catch {
    return "(no log)";
  }
}

/** Whether `port` can be bound on every address, as a host-network pod's port would be. */
export function portFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once("error", () => resolve(false));
    server.listen(port, "0.0.0.0", () => server.close(() => resolve(true)));
  });
}

/** A free TCP port on 127.0.0.1, chosen by the kernel. */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      server.close(() =>
        typeof address === "object" && address
          ? resolve(address.port)
          : reject(new Error("no port")),
      );
    });
  });
}

/** Polls `probe` until it returns true or `timeoutMs` passes; the error names what was awaited. */
export async function waitFor(
  what: string,
  probe: () => Promise<boolean> | boolean,
  timeoutMs: number,
  intervalMs = 100,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  while (Date.now() < deadline) {
    try {
      if (await probe()) return;
    } catch (err) {
      lastError = err;
    }
    await sleep(intervalMs);
  }
  throw new Error(
    `timed out after ${timeoutMs} ms waiting for ${what}` +
      (lastError ? `: ${String(lastError)}` : ""),
  );
}
