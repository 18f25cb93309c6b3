// Runs the `rbd` command line: an argument array handed to execve (never a shell), the cluster
// and cephx options and the Ceph-side timeouts prepended, and a process timeout that kills a
// client stuck anywhere Ceph's own timeouts do not reach. A non-zero exit is returned, not
// thrown: only the caller knows what, say, ENOENT means for its operation.
import { execFile } from "node:child_process";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { opTimeoutSeconds, processTimeoutMs, type RbdConfig } from "./config.ts";
import { StorageError } from "./errors.ts";

export interface RbdResult {
  readonly exitCode: number;
  readonly stdout: string;
  readonly stderr: string;
}

/**
 * Runs `rbd <args>` and resolves with its exit code and output. Rejects only when no exit code
 * exists: `StorageTimeout` when the process was killed for overrunning, `Unknown` when it could
 * not start. Tests inject their own runner to observe or fake every invocation.
 */
export type RbdRunner = (args: readonly string[]) => Promise<RbdResult>;

/** Options that connect to the cluster and bound each Ceph operation; go before the subcommand. */
export function connectionArgs(config: RbdConfig): string[] {
  const timeout = String(opTimeoutSeconds(config));
  return [
    "--conf",
    config.confPath,
    "--id",
    config.clientId,
    "--keyring",
    config.keyringPath,
    "--rados-osd-op-timeout",
    timeout,
    "--rados-mon-op-timeout",
    timeout,
    "--client-mount-timeout",
    timeout,
  ];
}

const SETPRIV = "/usr/bin/setpriv";

/**
 * `rbd` under `setpriv --pdeathsig KILL`, where util-linux's setpriv exists: an `rbd` call must not
 * outlive the controller that made it. A controller killed mid-snapshot is replaced by one that
 * removes the attempt's artefacts; an orphaned `rbd` still running could create its snapshot
 * after that removal and leave it behind.
 */
function dyingWithParent(command: string, argv: string[]): [string, string[]] {
  const resolved = resolveOnPath(command);
  // An unresolvable command is left to execFile, whose spawn error says what is missing.
  return existsSync(SETPRIV) && resolved
    ? [SETPRIV, ["--pdeathsig", "KILL", "--", resolved, ...argv]]
    : [command, argv];
}

function resolveOnPath(command: string): string | undefined {
  if (command.includes("/")) return existsSync(command) ? command : undefined;
  for (const dir of (process.env.PATH ?? "").split(":")) {
    if (dir && existsSync(join(dir, command))) return join(dir, command);
  }
  return undefined;
}

/** The real runner: one `rbd` process per call. */
export function createRbdRunner(config: RbdConfig): RbdRunner {
  const command = config.rbdPath ?? "rbd";
  const killAfterMs = processTimeoutMs(config);
  return (args) =>
    new Promise((resolve, reject) => {
      const argv = [...connectionArgs(config), ...args];
      const [file, fileArgs] = dyingWithParent(command, argv);
      execFile(
        file,
        fileArgs,
        {
          encoding: "utf8",
          timeout: killAfterMs,
          killSignal: "SIGKILL",
          maxBuffer: 16 * 1024 * 1024,
          shell: false,
        },
        (error, stdout, stderr) => {
          if (!error) return resolve({ exitCode: 0, stdout, stderr });
          const failure = error as NodeJS.ErrnoException & {
            killed?: boolean;
            signal?: string | null;
          };
          if (failure.killed) {
            return reject(
              new StorageError(
                "StorageTimeout",
                `rbd ${args.join(" ")}: no answer within ${killAfterMs} ms; killed`,
                {
                  command: args,
                  stderr,
                },
              ),
            );
          }
          if (typeof failure.code === "number")
            return resolve({ exitCode: failure.code, stdout, stderr });
          if (failure.signal) {
            // Killed by someone else or crashed (SIGSEGV, SIGABRT): the outcome is unknown, but
            // this is not Ceph being slow, so it is not reported as a timeout.
            const message = `rbd ${args.join(" ")}: died from ${failure.signal}`;
            return reject(new StorageError("Unknown", message, { command: args, stderr }));
          }
          reject(
            new StorageError("Unknown", `cannot run ${command}: ${failure.message}`, {
              command: args,
            }),
          );
        },
      );
    });
}
