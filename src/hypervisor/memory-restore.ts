// The memory half of a restore: a VM snapshot's RAM image brought back, the vCPUs resumed, and
// the guest's filesystems thawed at once. A memory image vmsnap took while the guest was frozen
// comes back frozen (measured, docs/restore-facts.md): without the thaw every write in the guest
// blocks. So the order is fixed —
//
//   virDomainRestoreFlags(file, dxml, PAUSED)   the disks in dxml already point at the restored images
//   beforeResume()                              the caller arms its thaw guard / writes the deadline
//   virDomainResume                             t0: the guest runs (frozen)
//   virDomainFSThaw, retried while the agent    the agent channel reconnects shortly after a
//     is not connected yet (86)                 restore; thaw is harmless when nothing is frozen
//   guest-fsfreeze-status == "thawed"           the agent's own word, not libvirt's bookkeeping
//
// and every call has a deadline. Nothing here decides whether to restore: that is the machine's.
import type { Hypervisor } from "./connection.ts";
import { HypervisorError } from "./errors.ts";
import { SaveRestoreFlags } from "./flags.ts";

/** The parts of the Hypervisor a memory restore uses. */
export type MemoryRestorePort = Pick<Hypervisor, "restore" | "resume" | "fsThaw" | "freezeStatus">;

export interface MemoryRestoreRequest {
  /** The domain's name in `xml` (the restored domain's name). */
  readonly domain: string;
  /** The memory image (a libvirt external memory snapshot file is a save image). */
  readonly file: string;
  /** Domain XML for the restore, disks pointing at the restored images (restoreDomainXml). */
  readonly xml: string;
  /** Longest time from the resume to a confirmed thaw. */
  readonly thawTimeoutMs: number;
  /** Deadline of the restore call itself (it reads the whole image). Default 120 s. */
  readonly restoreTimeoutMs?: number;
  /** Runs after the restore, before the resume: arm the thaw guard, write the deadline. */
  readonly beforeResume?: () => Promise<void>;
  /** Clock for the timings; default Date.now. */
  readonly now?: () => number;
  /** Pause between thaw attempts while the agent is not connected yet. Default 10 ms. */
  readonly retryDelayMs?: number;
}

export interface MemoryRestoreTimings {
  /** Wall-clock ms of the restore call (image read, devices set up). */
  readonly restoreMs: number;
  /** Epoch ms when the resume returned: the guest's vCPUs run from here. */
  readonly resumedAt: number;
  /** Epoch ms when the agent confirmed `thawed`. */
  readonly thawedAt: number;
  /** thawedAt - resumedAt. */
  readonly resumeToThawMs: number;
  /** Filesystems the successful thaw reported thawed (0 when none was frozen). */
  readonly thawedFilesystems: number;
  /** Thaw calls made; more than one means the agent was not connected yet at the first. */
  readonly thawAttempts: number;
  /** How long the successful virDomainFSThaw call took (libvirt waits for the agent's sync). */
  readonly thawCallMs: number;
  /** How long the confirming guest-fsfreeze-status took. */
  readonly statusCallMs: number;
}

const DEFAULT_RESTORE_TIMEOUT_MS = 120_000;

/**
 * Restores `file` paused, resumes, thaws and confirms. Fails with the HypervisorError of the
 * step that failed; a thaw that cannot be confirmed within `thawTimeoutMs` is a
 * HypervisorError(reason Timeout) — the guest runs but may be frozen, and the caller's guard
 * must keep trying.
 *
 * @example
 * const t = await restoreMemoryAndThaw(hv, { domain, file, xml, thawTimeoutMs: 10_000,
 *   beforeResume: () => guard.arm(domain, deadline) });
 * console.log(`thawed ${t.resumeToThawMs} ms after resume`);
 */
export async function restoreMemoryAndThaw(
  hv: MemoryRestorePort,
  request: MemoryRestoreRequest,
): Promise<MemoryRestoreTimings> {
  const now = request.now ?? Date.now;
  const started = now();
  await hv.restore(request.file, {
    xml: request.xml,
    flags: SaveRestoreFlags.Paused,
    timeoutMs: request.restoreTimeoutMs ?? DEFAULT_RESTORE_TIMEOUT_MS,
  });
  const restoreMs = now() - started;
  await request.beforeResume?.();
  await hv.resume(request.domain, { timeoutMs: request.thawTimeoutMs });
  const resumedAt = now();
  const thaw = await thawConfirmed(hv, request.domain, resumedAt + request.thawTimeoutMs, {
    now,
    retryDelayMs: request.retryDelayMs ?? 10,
  });
  return {
    restoreMs,
    resumedAt,
    thawedAt: thaw.at,
    resumeToThawMs: thaw.at - resumedAt,
    thawedFilesystems: thaw.filesystems,
    thawAttempts: thaw.attempts,
    thawCallMs: thaw.thawCallMs,
    statusCallMs: thaw.statusCallMs,
  };
}

export interface ThawOptions {
  readonly now?: () => number;
  readonly retryDelayMs?: number;
}

/**
 * Thaws the guest and asks the agent until it says `thawed`, by `deadline` (epoch ms). The
 * agent is retried while it is not connected (GuestAgentUnresponsive): right after a restore or
 * a boot its channel comes up a little later than the vCPUs.
 */
export async function thawConfirmed(
  hv: Pick<Hypervisor, "fsThaw" | "freezeStatus">,
  domain: string,
  deadline: number,
  options: ThawOptions = {},
): Promise<{
  at: number;
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
      const at = now();
      if (status === "thawed")
        return {
          at,
          filesystems,
          attempts,
          thawCallMs: statusStart - thawStart,
          statusCallMs: at - statusStart,
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
    err instanceof HypervisorError &&
    (err.reason === "GuestAgentUnresponsive" || err.reason === "Timeout")
  );
}
