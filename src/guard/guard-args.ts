// The guard process's command line, written by the client and read by the guard: one place,
// so the two cannot drift apart.
import { parseArgs } from "node:util";
import { DEFAULT_THAW_POLICY, type ThawPolicy } from "./thaw.ts";

export interface GuardConfig extends ThawPolicy {
  /** libvirt URI the guard opens its own connection to. */
  readonly uri: string;
}

/** `config` as guard arguments. */
export function toArgv(config: GuardConfig): string[] {
  return [
    "--uri",
    config.uri,
    "--attempts",
    String(config.attempts),
    "--retry-delay-ms",
    String(config.retryDelayMs),
    "--max-retry-delay-ms",
    String(config.maxRetryDelayMs),
    "--call-timeout-ms",
    String(config.callTimeoutMs),
  ];
}

/** The guard's arguments; omitted numbers take DEFAULT_THAW_POLICY's. Throws on bad input. */
export function fromArgv(argv: readonly string[]): GuardConfig {
  const { values } = parseArgs({
    args: [...argv],
    strict: true,
    options: {
      uri: { type: "string" },
      attempts: { type: "string" },
      "retry-delay-ms": { type: "string" },
      "max-retry-delay-ms": { type: "string" },
      "call-timeout-ms": { type: "string" },
    },
  });
  if (!values.uri) throw new Error("--uri is required");
  const d = DEFAULT_THAW_POLICY;
  return {
    uri: values.uri,
    attempts: positive("attempts", values.attempts, d.attempts),
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
