// From a failed `rbd` run to a typed StorageError. The CLI has no JSON errors; its contract is
// the exit code (= errno) and a last stderr line `rbd: <context>: (<errno>) <message>` (group
// commands print only a librbd log line with the same `(<errno>)`). We classify by number only;
// the text goes into the message for humans. ENOENT cannot be classified from the number (pool,
// namespace, image, group and snapshot all give 2): the caller passes what it found missing.
import { StorageError, type StorageErrorReason } from "./errors.ts";
import type { RbdResult } from "./runner.ts";

const ENOENT = 2;
const EPERM = 1;

/** Per-errno reasons that depend on the operation (e.g. EBUSY is "protected" for `snap rm`). */
export type ReasonOverrides = Partial<Record<number, StorageErrorReason>>;

const BY_ERRNO: Readonly<Record<number, StorageErrorReason>> = {
  13: "PermissionDenied", // EACCES: cephx refused the client
  16: "Busy", // EBUSY
  17: "AlreadyExists", // EEXIST
  39: "HasSnapshots", // ENOTEMPTY
  110: "StorageTimeout", // ETIMEDOUT: --rados-*-op-timeout / --client-mount-timeout fired
};

/** The errno printed as `(N)` on the last stderr line that has one. */
export function stderrErrno(stderr: string): number | undefined {
  const matches = [...stderr.matchAll(/\((\d+)\) [^\n]*/g)];
  const last = matches.at(-1);
  return last ? Number(last[1]) : undefined;
}

/** The most telling stderr line: the last `rbd: ...` line, else the last non-empty one. */
export function stderrSummary(stderr: string): string {
  const lines = stderr
    .split("\n")
    .map((l) => l.trim())
    .filter(Boolean);
  return lines.filter((l) => l.startsWith("rbd: ")).at(-1) ?? lines.at(-1) ?? "";
}

/**
 * Maps a failed run to a StorageError. `enoentReason` is what the caller determined is missing
 * (it checks existence; see missing.ts); without it ENOENT stays `Unknown`.
 */
export function mapRbdFailure(
  args: readonly string[],
  result: RbdResult,
  enoentReason?: StorageErrorReason,
  overrides: ReasonOverrides = {},
): StorageError {
  const errno = stderrErrno(result.stderr);
  const summary = stderrSummary(result.stderr);
  const details = { command: args, exitCode: result.exitCode, errno, stderr: result.stderr };
  const code = result.exitCode;
  const message = `rbd ${args.join(" ")} failed (exit ${code}): ${summary || "no message"}`;
  let reason: StorageErrorReason;
  if (overrides[code]) reason = overrides[code];
  else if (code === 110) reason = "StorageTimeout";
  else if (/couldn't connect to the cluster/.test(summary)) {
    // Not a missing pool even when the exit code is 2: a missing or unreadable keyring (2, 5)
    // or refused cephx authentication (13, 1) all end up here.
    reason = "PermissionDenied";
  } else if (code === EPERM) {
    // 1 is both EPERM (caps do not allow the op; stderr says "(1) Operation not permitted") and
    // the CLI's "bad option" exit; only the former is a permission problem.
    reason = errno === EPERM ? "PermissionDenied" : "Unknown";
  } else if (code === ENOENT) reason = enoentReason ?? "Unknown";
  else reason = BY_ERRNO[code] ?? "Unknown";
  return new StorageError(reason, message, details);
}
