// Runs a command-line tool with an argument array (never a shell string) and returns its exit
// code and output, so a test can assert on a non-zero exit instead of catching an exception.
import { execFile } from "node:child_process";
import { fileURLToPath } from "node:url";

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** The repository root, so tests pass the same paths whatever mocha's working directory. */
export const REPO_ROOT = fileURLToPath(new URL("../../../", import.meta.url));

export function run(
  command: string,
  args: readonly string[],
  options: { input?: string; cwd?: string; timeoutMs?: number } = {},
): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = execFile(
      command,
      args,
      { cwd: options.cwd ?? REPO_ROOT, timeout: options.timeoutMs ?? 60_000, maxBuffer: 16 << 20 },
      (error, stdout, stderr) => {
        // A missing binary is a broken environment, not a verdict of the tool.
        if (error && (error as NodeJS.ErrnoException).code === "ENOENT") return reject(error);
        const code = error ? (typeof error.code === "number" ? error.code : -1) : 0;
        resolve({ code, stdout, stderr });
      },
    );
    child.stdin?.end(options.input ?? "");
  });
}
