// Running the Ceph command-line tools from tests: argument arrays only (never a shell), a hard
// process timeout, and the result returned whatever the exit code, so tests can assert on
// failures as well as successes.
import { execFile } from "node:child_process";

export interface CliResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

export interface CliOptions {
  /** Kill the tool after this long; a hung Ceph client would otherwise stall the whole run. */
  timeoutMs?: number;
  /** Bytes written to the tool's stdin (for `rbd import - ...`). */
  input?: Buffer;
  /** Return stdout as raw bytes in `stdoutBytes` (for `rbd export ... -`). */
  binary?: boolean;
}

export interface BinaryCliResult extends CliResult {
  readonly stdoutBytes: Buffer;
}

/** Runs `command args...`; resolves with its exit code instead of rejecting on failure. */
export function runCli(
  command: string,
  args: readonly string[],
  options: CliOptions = {},
): Promise<BinaryCliResult> {
  return new Promise((resolve, reject) => {
    const child = execFile(
      command,
      args,
      {
        encoding: "buffer",
        timeout: options.timeoutMs ?? 60_000,
        killSignal: "SIGKILL",
        maxBuffer: 256 * 1024 * 1024,
      },
      (error, stdout, stderr) => {
        const failure = error as
          (NodeJS.ErrnoException & { code?: unknown; killed?: boolean }) | null;
        if (failure && typeof failure.code === "string") return reject(failure); // ENOENT: no such tool
        if (failure?.killed) {
          return reject(
            new Error(
              `${command} ${args.join(" ")}: killed after ${options.timeoutMs ?? 60_000} ms`,
            ),
          );
        }
        resolve({
          code: failure ? Number(failure.code ?? 1) : 0,
          stdout: options.binary ? "" : stdout.toString("utf8"),
          stdoutBytes: stdout,
          stderr: stderr.toString("utf8"),
        });
      },
    );
    if (options.input) child.stdin?.end(options.input);
    else child.stdin?.end();
  });
}

/** Like `runCli`, but a non-zero exit is an error carrying the tool's stderr. */
export async function runCliOk(
  command: string,
  args: readonly string[],
  options: CliOptions = {},
): Promise<BinaryCliResult> {
  const result = await runCli(command, args, options);
  if (result.code !== 0) {
    throw new Error(`${command} ${args.join(" ")} exited ${result.code}: ${result.stderr.trim()}`);
  }
  return result;
}
