// The thaw a memory restore owes its guest: a RAM image vmsnap took while the guest was frozen
// comes back frozen (measured, docs/restore-facts.md), so right after the resume the filesystems
// are thawed and the agent is asked until it says so itself — `guest-fsfreeze-status`, not
// libvirt's bookkeeping. The restore's steps around it (restore paused, arm the guard, resume)
// are the VMRestore machine's (src/restore/), each recorded in status before the next.
import type { Hypervisor } from "./connection.ts";
import { HypervisorError, outcomeUnknown } from "./errors.ts";

export interface ThawOptions {
  readonly now?: () => number;
  readonly retryDelayMs?: number;
}

/**
 * Thaws the guest and asks the agent until it says `thawed`, by `deadline` (epoch ms). The
 * agent is retried while it is not connected (GuestAgentUnresponsive): right after a restore or
 * a boot its channel comes up a little later than the vCPUs.
 */
export async function thawAndConfirm(
  hv: Pick<Hypervisor, "fsThaw" | "freezeStatus">,
  domain: string,
  deadline: number,
  options: ThawOptions = {},
): Promise<{
  /** When the thaw call returned: the agent had thawed the filesystems (its reply follows the
   *  FITHAW ioctls and the thaw hook). The thaw's time; the confirmation comes after. */
  at: number;
  /** When the agent then said `thawed` itself. */
  confirmedAt: number;
  filesystems: number;
  attempts: number;
  thawCallMs: number;
  statusCallMs: number;
}> {
  const now = options.now ?? Date.now;
  const delay = options.retryDelayMs ?? 10;
  let attempts = 0;
  let last: unknown;
  while (now() < deadline) {
    const left = Math.max(1, deadline - now());
    try {
      attempts += 1;
      const thawStart = now();
      const filesystems = await hv.fsThaw(domain, { timeoutMs: left });
      const statusStart = now();
      const status = await hv.freezeStatus(domain, { timeoutMs: Math.max(1, deadline - now()) });
      const confirmedAt = now();
      if (status === "thawed")
        return {
          at: statusStart,
          confirmedAt,
          filesystems,
          attempts,
          thawCallMs: statusStart - thawStart,
          statusCallMs: confirmedAt - statusStart,
        };
      last = new Error(`the agent still reports ${status} after a thaw`);
    } catch (err) {
      if (!isRetryable(err)) throw err;
      last = err;
    }
    await new Promise((resolve) => setTimeout(resolve, delay));
  }
  throw new HypervisorError(
    `thaw(${domain}): not confirmed thawed before the deadline after ${attempts} attempt(s): ${String(last)}`,
    { reason: "Timeout", operation: "fsThaw", target: domain },
  );
}

/** The agent not being there yet is worth another try; anything else is the caller's to handle. */
function isRetryable(err: unknown): boolean {
  return (
    (err instanceof HypervisorError && err.reason === "GuestAgentUnresponsive") ||
    outcomeUnknown(err)
  );
}
