// Thawing one guest, the one way vmsnap does it (the guard, the effects and the start-up
// recovery all call thawGuest): resume its vCPUs first when asked (a paused guest's agent
// cannot answer), thaw, and retry transient failures until the thaw succeeds, the domain turns out to be gone or stopped, or the attempts run out. Thawing a
// guest that is not frozen is harmless, so the guard never needs to know whether it was.
import type { DomainInfo, Hypervisor } from "./connection.ts";
import { HypervisorError, type HypervisorErrorReason } from "./errors.ts";

/** thawed: the thaw call succeeded; gone: the domain is stopped or missing; failed: gave up. */
export type ThawOutcome = "thawed" | "gone" | "failed";

/** The three calls a thaw makes. */
export type ThawTarget = Pick<Hypervisor, "domainInfo" | "resume" | "fsThaw">;

export interface ThawPolicy {
  /** Tries in all, first included. */
  readonly attempts: number;
  /** Wait before the second try; doubles per try up to maxRetryDelayMs. */
  readonly retryDelayMs: number;
  readonly maxRetryDelayMs: number;
  /** Deadline of each libvirt call: a hung call must not use up the guard's whole budget. */
  readonly callTimeoutMs: number;
}

export const DEFAULT_THAW_POLICY: ThawPolicy = {
  attempts: 8,
  retryDelayMs: 100,
  maxRetryDelayMs: 2_000,
  callTimeoutMs: 5_000,
};

export interface ThawResult {
  readonly outcome: ThawOutcome;
  readonly thawed: number;
  readonly resumed: boolean;
  readonly attempts: number;
  readonly error?: HypervisorErrorReason;
  /** The last error itself, for callers that classify or count it. */
  readonly lastError?: unknown;
}

// Failures no retry can cure: the domain has no agent (so nothing was frozen), or libvirt
// refuses the call outright.
const PERMANENT: ReadonlySet<HypervisorErrorReason> = new Set([
  "GuestAgentNotConfigured",
  "Unsupported",
  "InvalidArgument",
]);

/**
 * Resumes (if asked and paused) and thaws `domain`, retrying per `policy`.
 *
 * @example
 * const r = await thawGuest(hv, "web-1", true, DEFAULT_THAW_POLICY);
 * // { outcome: "thawed", thawed: 2, resumed: true, attempts: 1 }
 */
export async function thawGuest(
  target: ThawTarget,
  domain: string,
  resumeIfPaused: boolean,
  policy: ThawPolicy,
  sleep: (ms: number) => Promise<void> = defaultSleep,
): Promise<ThawResult> {
  const timeout = { timeoutMs: policy.callTimeoutMs };
  let resumed = false;
  let error: HypervisorErrorReason | undefined;
  let lastError: unknown;
  let attempt = 0;
  while (attempt < policy.attempts) {
    attempt++;
    try {
      if (resumeIfPaused && (await target.domainInfo(domain, timeout)).state === "paused") {
        await target.resume(domain, timeout);
        resumed = true;
      }
      const thawed = await target.fsThaw(domain, timeout);
      return { outcome: "thawed", thawed, resumed, attempts: attempt };
    } catch (err) {
      lastError = err;
      error = err instanceof HypervisorError ? err.reason : "Unknown";
      if (error === "DomainNotFound")
        return { outcome: "gone", thawed: 0, resumed, attempts: attempt, error, lastError };
      // "Not running" covers paused as well as stopped; only a stopped guest is done with.
      if (error === "DomainNotRunning" && (await isStopped(target, domain, timeout)))
        return { outcome: "gone", thawed: 0, resumed, attempts: attempt, error, lastError };
      if (PERMANENT.has(error)) break;
      if (attempt < policy.attempts) await sleep(backoff(policy, attempt));
    }
  }
  return {
    outcome: "failed",
    thawed: 0,
    resumed,
    attempts: attempt,
    ...(error === undefined ? {} : { error, lastError }),
  };
}

/** Whether the domain is gone or not active: a stopped guest keeps no frozen filesystem. */
async function isStopped(
  target: ThawTarget,
  domain: string,
  timeout: { timeoutMs: number },
): Promise<boolean> {
  let info: DomainInfo;
  try {
    info = await target.domainInfo(domain, timeout);
  } catch (err) {
    return err instanceof HypervisorError && err.reason === "DomainNotFound";
  }
  return !info.active;
}

function backoff(policy: ThawPolicy, attempt: number): number {
  return Math.min(policy.retryDelayMs * 2 ** (attempt - 1), policy.maxRetryDelayMs);
}

function defaultSleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
