// Thawing one guest, the one way vmsnap does it (the guard, the effects and the start-up
// recovery all call thawGuest): resume its vCPUs first when asked (a paused guest's agent
// cannot answer), thaw, and retry transient failures with capped backoff (thaw-backoff.ts) until
// the thaw is confirmed, the guest turns out to be stopped, the domain cannot be found, or the
// attempts run out (the guard's policy has no limit). Thawing a guest that is not frozen is
// harmless, so the guard never needs to know whether it was.
import type { Hypervisor } from "./connection.ts";
import { HypervisorError, type HypervisorErrorReason } from "./errors.ts";
import { retryDelayMs, type ThawBackoff } from "./thaw-backoff.ts";

/**
 * thawed: the thaw call succeeded (nothing is frozen now).
 * stopped: the domain is here and shut off; a stopped guest keeps no frozen filesystem.
 * lost: no domain of that name here any more (libvirt code 42). It may have been migrated or
 *   undefined and defined again while frozen: the guest may still be frozen somewhere else, so
 *   this is not "done", only "no longer ours to thaw from here".
 * failed: a failure no retry can cure (no agent channel, refused), or the tries ran out.
 */
export type ThawOutcome = "thawed" | "stopped" | "lost" | "failed";

/** Outcomes after which the guest is known to hold no frozen filesystem. */
export function thawConfirmed(outcome: ThawOutcome): boolean {
  return outcome === "thawed" || outcome === "stopped";
}

/** The three calls a thaw makes. */
export type ThawTarget = Pick<Hypervisor, "domainInfo" | "resume" | "fsThaw">;

export interface ThawPolicy extends ThawBackoff {
  /** Deadline of each libvirt call: a hung call must not hold up the next try. */
  readonly callTimeoutMs: number;
}

/** A few quick tries (~7 s when libvirtd refuses connections): for callers that must go on,
 *  the controller's start-up recovery, with the guard armed behind them. */
export const DEFAULT_THAW_POLICY: ThawPolicy = {
  attempts: 8,
  retryDelayMs: 100,
  maxRetryDelayMs: 2_000,
  callTimeoutMs: 5_000,
};

/** The guard's: never give up while the guard lives. The cap keeps a guard waiting out a long
 *  libvirtd outage at one try every 2 s (a connection attempt: cheap), so a guest is thawed
 *  within about that long once libvirtd is back (measured: docs/libvirt-facts.md). */
export const GUARD_THAW_POLICY: ThawPolicy = {
  attempts: Number.POSITIVE_INFINITY,
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

export interface ThawHooks {
  /**
   * The domain's UUID when it was frozen. A domain of that name with another UUID (undefined and
   * defined again, or another VM given the name) is never thawed or resumed: the outcome is
   * `lost`, as the guest that was frozen is not here under that name any more.
   */
  readonly uuid?: string;
  readonly sleep?: (ms: number) => Promise<void>;
  /** Called after each failed try that will be tried again: the guard reports its progress. */
  readonly onRetry?: (attempt: number, error: HypervisorErrorReason) => void;
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
  hooks: ThawHooks = {},
): Promise<ThawResult> {
  const sleep = hooks.sleep ?? defaultSleep;
  const timeout = { timeoutMs: policy.callTimeoutMs };
  let resumed = false;
  let error: HypervisorErrorReason | undefined;
  let lastError: unknown;
  for (let attempt = 1; ; attempt++) {
    const end = (outcome: ThawOutcome): ThawResult => ({
      outcome,
      thawed: 0,
      resumed,
      attempts: attempt,
      ...(error === undefined ? {} : { error, lastError }),
    });
    try {
      const info =
        resumeIfPaused || hooks.uuid !== undefined
          ? await target.domainInfo(domain, timeout)
          : undefined;
      if (hooks.uuid !== undefined && info!.uuid !== hooks.uuid) {
        // The domain that was frozen is not here under that name: not found, as for libvirt.
        lastError = new HypervisorError(
          `domain ${domain} is now another domain (UUID ${info!.uuid}, frozen was ${hooks.uuid})`,
          { reason: "DomainNotFound", operation: "fsThaw", target: domain },
        );
        error = "DomainNotFound";
        return end("lost");
      }
      if (resumeIfPaused && info!.state === "paused") {
        await target.resume(domain, timeout);
        resumed = true;
      }
      const thawed = await target.fsThaw(domain, timeout);
      return { outcome: "thawed", thawed, resumed, attempts: attempt };
    } catch (err) {
      lastError = err;
      error = err instanceof HypervisorError ? err.reason : "Unknown";
      if (error === "DomainNotFound") return end("lost");
      // "Not running" covers paused as well as stopped; only a stopped guest is done with.
      if (error === "DomainNotRunning") {
        const state = await presence(target, domain, timeout);
        if (state !== "active") return end(state);
      }
      if (PERMANENT.has(error)) return end("failed");
      const delay = retryDelayMs(policy, attempt);
      if (delay === undefined) return end("failed");
      hooks.onRetry?.(attempt, error);
      await sleep(delay);
    }
  }
}

/** Whether the domain is still here and running (or paused), stopped, or not found. */
async function presence(
  target: ThawTarget,
  domain: string,
  timeout: { timeoutMs: number },
): Promise<"active" | "stopped" | "lost"> {
  try {
    return (await target.domainInfo(domain, timeout)).active ? "active" : "stopped";
  } catch (err) {
    if (err instanceof HypervisorError && err.reason === "DomainNotFound") return "lost";
    // Unknown (e.g. the connection dropped): keep trying the thaw.
    return "active";
  }
}

function defaultSleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
