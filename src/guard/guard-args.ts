// The guard process's command line, written by the client and read by the guard: one place,
// so the two cannot drift apart.
import { isAbsolute } from "node:path";
import { parseArgs } from "node:util";
import { isUnbounded } from "../hypervisor/thaw-backoff.ts";
import { GUARD_THAW_POLICY, type ThawPolicy } from "../hypervisor/thaw.ts";

export interface GuardConfig extends ThawPolicy {
  /** libvirt URI the guard opens its own connection to. */
  readonly uri: string;
  /** Server mode (a sidecar): the unix socket controllers connect to. Absent, the guard serves
   *  the one controller that spawned it, on its stdin and stdout. */
  readonly listen?: string;
}

/** sun_path holds 108 bytes, the terminating NUL included; a longer path would be cut short. */
export const MAX_SOCKET_PATH_BYTES = 107;

/** `path` when it can name a unix socket: absolute (the guard and its clients run in different
 *  working directories) and short enough. Throws otherwise. */
export function checkSocketPath(path: string): string {
  if (!isAbsolute(path)) throw new Error(`socket path ${JSON.stringify(path)} must be absolute`);
  if (Buffer.byteLength(path) > MAX_SOCKET_PATH_BYTES)
    throw new Error(`socket path ${path} is longer than ${MAX_SOCKET_PATH_BYTES} bytes`);
  return path;
}

/** `config` as guard arguments. */
export function toArgv(config: GuardConfig): string[] {
  return [
    "--uri",
    config.uri,
    ...(config.listen === undefined ? [] : ["--listen", config.listen]),
    "--attempts",
    isUnbounded(config) ? UNBOUNDED : String(config.attempts),
    "--retry-delay-ms",
    String(config.retryDelayMs),
    "--max-retry-delay-ms",
    String(config.maxRetryDelayMs),
    "--call-timeout-ms",
    String(config.callTimeoutMs),
  ];
}

/** `--attempts unbounded`: retry a thaw until it is confirmed (the default). */
const UNBOUNDED = "unbounded";

/** The guard's arguments; omitted numbers take GUARD_THAW_POLICY's. Throws on bad input. */
export function fromArgv(argv: readonly string[]): GuardConfig {
  const { values } = parseArgs({
    args: [...argv],
    strict: true,
    options: {
      uri: { type: "string" },
      listen: { type: "string" },
      attempts: { type: "string" },
      "retry-delay-ms": { type: "string" },
      "max-retry-delay-ms": { type: "string" },
      "call-timeout-ms": { type: "string" },
    },
  });
  if (!values.uri) throw new Error("--uri is required");
  const d = GUARD_THAW_POLICY;
  return {
    uri: values.uri,
    ...(values.listen === undefined ? {} : { listen: checkSocketPath(values.listen) }),
    attempts:
      values.attempts === UNBOUNDED
        ? Number.POSITIVE_INFINITY
        : positive("attempts", values.attempts, d.attempts),
    retryDelayMs: positive("retry-delay-ms", values["retry-delay-ms"], d.retryDelayMs),
    maxRetryDelayMs: positive(
      "max-retry-delay-ms",
      values["max-retry-delay-ms"],
      d.maxRetryDelayMs,
    ),
    callTimeoutMs: positive("call-timeout-ms", values["call-timeout-ms"], d.callTimeoutMs),
  };
}

function positive(name: string, value: string | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isSafeInteger(n) || n < 1) throw new Error(`--${name} must be a positive integer`);
  return n;
}
