// The memory half of a VM snapshot written while the guest runs: QEMU's `background-snapshot`
// migration capability (userfaultfd write-protect) saves RAM as it was at the moment of arming,
// copying each page the guest writes before the write proceeds, into a file that starts with
// libvirt's save-image header, so virDomainRestoreFlags restores it like an image libvirt saved.
// libvirt 9.0 has no API for it, so it is driven through QMP (libvirt marks the domain tainted
// "custom-monitor"; nothing else changes, see docs/live-memory-facts.md).
//
// The caller pauses the vCPUs, snapshots the disks, then arms; disks and RAM describe the instant
// of the pause. QEMU 7.2 resumes the vCPUs itself as soon as write tracking is armed (it does so
// even when they were paused before: measured, see the facts), so the caller must not resume;
// arming resolves only once QEMU did, which is the one reliable sign that RAM is captured. Then `finish` waits for QEMU to write the rest and marks the image
// complete; until then the header says "partial" and libvirt refuses to restore it.
//
// Three steps: prepare (before the freeze: header, capability, the file handed to QEMU), arm
// (vCPUs paused: `migrate`, wait for QEMU's own restart), finish (guest running: wait for the
// write, mark the image complete). Measured on libvirt 9.0 / QEMU 7.2 under TCG
// (docs/live-memory-facts.md): QEMU's stop inside arming is milliseconds and does not grow with
// RAM; the write afterwards runs while the guest runs.
import { open, rm, stat } from "node:fs/promises";
import { setTimeout as sleep } from "node:timers/promises";

import type { CallOptions, Hypervisor } from "./connection.ts";
import { HypervisorError } from "./errors.ts";
import { DomainXmlFlags } from "./flags.ts";
import { MEMORY_FILE_MODE } from "./memory-snapshot.ts";
import { completeMagic, partialSaveImageHeader } from "./save-image-header.ts";
import { assertValid, filePathProblem } from "./snapshot-name.ts";

/** The parts of the Hypervisor a background snapshot uses. */
export type BackgroundSnapshotPort = Pick<Hypervisor, "qmp" | "domainXml">;

/** QMP's name for the image's descriptor inside QEMU (getfd replaces an older one of the name). */
const FD_NAME = "vmsnap-memory";
const CAPABILITY = "background-snapshot";

export interface ArmRequest {
  readonly domain: string;
  /** Absolute path of the image; its folder must exist; an old file there is replaced. */
  readonly file: string;
  /** Budget for arming (the vCPUs are paused meanwhile). */
  readonly timeoutMs: number;
}

export interface Armed {
  /**
   * QEMU resumed the vCPUs itself once write tracking was armed (always, on QEMU 7.2): the caller
   * must not resume (libvirt answers "domain is already running", code 55).
   */
  readonly resumedByQemu: true;
  /** Milliseconds from the first QMP command to the vCPUs running again, write tracking armed. */
  readonly armMs: number;
  /** Where armMs went (ms): `migrate` (the QMP call), `armed` (waiting for QEMU's restart). */
  readonly steps: Readonly<Record<string, number>>;
}

export interface FinishRequest {
  readonly domain: string;
  readonly file: string;
  /** Budget for QEMU to write all RAM (grows with RAM and guest writes). */
  readonly timeoutMs: number;
  /** How often to ask QEMU for the migration's status; default 100 ms. */
  readonly pollMs?: number;
}

export interface BackgroundImage {
  readonly file: string;
  readonly bytes: number;
  /** QEMU's own measure of the vCPU stop inside the snapshot (ms). */
  readonly qemuDowntimeMs: number;
  /** QEMU's setup-to-completion time (ms). */
  readonly qemuTotalMs: number;
  /**
   * QEMU's setup time (ms): before its own stop, while the caller still holds the vCPUs paused;
   * it includes populating RAM pages never touched yet, so write protection covers them.
   */
  readonly qemuSetupMs: number;
}

interface MigrationInfo {
  readonly status?: string;
  readonly downtime?: number;
  readonly "total-time"?: number;
  readonly "setup-time"?: number;
  readonly "error-desc"?: string;
}

interface QemuStatus {
  readonly running?: boolean;
  readonly status?: string;
}

const ACTIVE = new Set(["setup", "active", "device", "pre-switchover", "cancelling"]);

/**
 * Before the freeze and the pause: writes the header (the domain's XML now), turns the capability
 * on and hands the file to QEMU, so that only `migrate` is left for the paused window. Undo with
 * `cancelBackgroundSnapshot` if the snapshot is abandoned before arming. A device change between
 * this and arming makes the image fail to restore (QEMU checks the stream against the XML's
 * devices) — loudly, never silently.
 */
export async function prepareBackgroundSnapshot(
  hv: BackgroundSnapshotPort,
  request: ArmRequest,
): Promise<void> {
  const { domain, file } = request;
  assertValid("monitorCommand", domain, [filePathProblem("memory file", file)]);
  const deadline = Date.now() + request.timeoutMs;
  const left = (): CallOptions => ({ timeoutMs: Math.max(1, deadline - Date.now()) });
  const before = (await hv.qmp(domain, "query-migrate", undefined, left())) as MigrationInfo;
  if (before.status !== undefined && ACTIVE.has(before.status)) {
    throw new HypervisorError(
      `monitorCommand(${domain}): a migration is already ${before.status}; not starting a background snapshot`,
      { reason: "InvalidArgument", operation: "monitorCommand", target: domain },
    );
  }
  // The XML libvirt itself puts in a save image: migratable, with secure details.
  const xml = await hv.domainXml(domain, {
    ...left(),
    flags: DomainXmlFlags.Migratable | DomainXmlFlags.Secure,
  });
  await rm(file, { force: true });
  const handle = await open(file, "wx", MEMORY_FILE_MODE);
  try {
    await handle.write(partialSaveImageHeader({ xml, wasRunning: true }));
    await setCapability(hv, domain, true, left());
    // QEMU writes through its own copy of the descriptor, appending after the header.
    await hv.qmp(domain, "getfd", { fdname: FD_NAME }, { ...left(), fds: [handle.fd] });
  } catch (err) {
    await discard(hv, domain, file);
    throw err;
  } finally {
    await handle.close();
  }
}

/**
 * With the vCPUs paused and the disks snapshotted (after `prepareBackgroundSnapshot`): starts the
 * background snapshot and resolves once QEMU has captured RAM and restarted the vCPUs itself. On
 * failure the snapshot is cancelled and the file removed; the vCPUs may then still be paused.
 */
export async function armBackgroundSnapshot(
  hv: BackgroundSnapshotPort,
  request: ArmRequest,
): Promise<Armed> {
  const { domain, file } = request;
  assertValid("monitorCommand", domain, [filePathProblem("memory file", file)]);
  const started = performance.now();
  const deadline = Date.now() + request.timeoutMs;
  const left = (): CallOptions => ({ timeoutMs: Math.max(1, deadline - Date.now()) });
  const steps: Record<string, number> = {};
  let last = started;
  const mark = (step: string) => {
    const now = performance.now();
    steps[step] = Math.round((now - last) * 10) / 10;
    last = now;
  };
  try {
    await hv.qmp(domain, "migrate", { uri: `fd:${FD_NAME}` }, left());
    mark("migrate");
    // Armed means: QEMU stopped the vCPUs itself, saved the device state, write-protected RAM and
    // started the vCPUs again (QEMU 7.2 starts them even if they were paused before). The
    // migration status says "active" *before* that, so it is no signal: a resume of ours in
    // between would let the guest run before RAM is captured. Wait for QEMU's own start.
    for (;;) {
      const status = (await hv.qmp(domain, "query-status", undefined, left())) as QemuStatus;
      if (status.running) break;
      const info = (await hv.qmp(domain, "query-migrate", undefined, left())) as MigrationInfo;
      if (info.status === "failed" || info.status === "cancelled") {
        throw migrationFailed(domain, info);
      }
      if (Date.now() >= deadline) throw armTimeout(domain, request.timeoutMs);
      await sleep(1);
    }
    mark("armed");
  } catch (err) {
    // Within arming's own budget again: a write still going after that is left to finish into
    // the removed file, and the arming error is what the caller hears.
    await cancelBackgroundSnapshot(hv, domain, file, { timeoutMs: request.timeoutMs }).catch(
      () => undefined,
    );
    throw err;
  }
  return { resumedByQemu: true, armMs: performance.now() - started, steps };
}

/**
 * Waits until QEMU has written all RAM, then marks the image complete (the header's magic) and
 * syncs it to disk. Safe to call again after a restart of the caller: it only reads QEMU's state.
 * A failed or cancelled write removes the file and rejects.
 */
export async function finishBackgroundSnapshot(
  hv: BackgroundSnapshotPort,
  request: FinishRequest,
): Promise<BackgroundImage> {
  const { domain, file } = request;
  assertValid("monitorCommand", domain, [filePathProblem("memory file", file)]);
  const deadline = Date.now() + request.timeoutMs;
  const left = (): CallOptions => ({ timeoutMs: Math.max(1, deadline - Date.now()) });
  let info: MigrationInfo;
  for (;;) {
    info = (await hv.qmp(domain, "query-migrate", undefined, left())) as MigrationInfo;
    if (info.status === "completed") break;
    if (info.status === undefined || !ACTIVE.has(info.status)) {
      await discard(hv, domain, file);
      throw migrationFailed(domain, info);
    }
    if (Date.now() >= deadline) {
      // Not cancelled (see cancelBackgroundSnapshot): QEMU finishes into a removed file.
      await discard(hv, domain, file);
      throw new HypervisorError(
        `monitorCommand(${domain}): the background snapshot did not complete within ${request.timeoutMs} ms; its image is removed`,
        { reason: "Timeout", operation: "monitorCommand", target: domain },
      );
    }
    await sleep(request.pollMs ?? 100);
  }
  const handle = await open(file, "r+");
  try {
    await handle.write(completeMagic(), 0, 16, 0);
    await handle.sync();
  } finally {
    await handle.close();
  }
  await setCapability(hv, domain, false, left());
  return {
    file,
    bytes: (await stat(file)).size,
    qemuDowntimeMs: info.downtime ?? 0,
    qemuTotalMs: info["total-time"] ?? 0,
    qemuSetupMs: info["setup-time"] ?? 0,
  };
}

/** How long `cancelBackgroundSnapshot` lets a write in progress go on by default. */
export const CANCEL_WAIT_MS = 600_000;

/**
 * Abandons a background snapshot: lets a write in progress finish, then removes the file (and
 * the capability). Idempotent. It never sends `migrate_cancel`: QEMU 7.2 (Debian 12's) leaves
 * guest RAM write-protected after cancelling a background snapshot, with nobody left to resolve
 * the faults, and the guest and its monitor hang (fixed upstream in May 2023, "migration: stop
 * tracking ram writes when cancelling background migration"; not in Debian's 7.2+dfsg-7+deb12u18).
 * Seen here: a QMP call unanswered for 120 s right after a cancel in the e2e test. The guest runs
 * meanwhile (the write copies pages only as the guest touches them), so waiting costs disk time,
 * never downtime. Rejects with Timeout when the write is still going after `timeoutMs`; the file
 * is removed either way (QEMU writes through its own descriptor).
 */
export async function cancelBackgroundSnapshot(
  hv: BackgroundSnapshotPort,
  domain: string,
  file: string,
  options: { readonly timeoutMs?: number; readonly pollMs?: number } = {},
): Promise<void> {
  const timeoutMs = options.timeoutMs ?? CANCEL_WAIT_MS;
  const deadline = Date.now() + timeoutMs;
  const left = (): CallOptions => ({ timeoutMs: Math.max(1, deadline - Date.now()) });
  try {
    for (;;) {
      const info = (await hv.qmp(domain, "query-migrate", undefined, left())) as MigrationInfo;
      if (info.status === undefined || !ACTIVE.has(info.status)) break;
      if (Date.now() >= deadline) {
        throw new HypervisorError(
          `monitorCommand(${domain}): an abandoned background snapshot was still ${info.status} after ${timeoutMs} ms; ` +
            "not cancelled (QEMU 7.2 hangs the guest on that); it goes on writing to a removed file",
          { reason: "Timeout", operation: "monitorCommand", target: domain },
        );
      }
      await sleep(options.pollMs ?? 100);
    }
  } finally {
    await discard(hv, domain, file);
  }
}

async function discard(hv: BackgroundSnapshotPort, domain: string, file: string): Promise<void> {
  await rm(file, { force: true });
  try {
    await setCapability(hv, domain, false);
    // QEMU's copy of the descriptor, if `migrate` never took it.
    await hv.qmp(domain, "closefd", { fdname: FD_NAME }).catch(() => undefined);
  } catch {
    // The domain may be gone; the capability and the descriptor went with its QEMU process.
  }
}

async function setCapability(
  hv: BackgroundSnapshotPort,
  domain: string,
  state: boolean,
  options?: CallOptions,
): Promise<void> {
  await hv.qmp(
    domain,
    "migrate-set-capabilities",
    { capabilities: [{ capability: CAPABILITY, state }] },
    options,
  );
}

function migrationFailed(domain: string, info: MigrationInfo): HypervisorError {
  return new HypervisorError(
    `monitorCommand(${domain}): background snapshot ${info.status ?? "not running"}: ${info["error-desc"] ?? "no error given"}`,
    { reason: "Unknown", operation: "monitorCommand", target: domain },
  );
}

function armTimeout(domain: string, timeoutMs: number): HypervisorError {
  return new HypervisorError(
    `monitorCommand(${domain}): write tracking not armed within ${timeoutMs} ms`,
    { reason: "Timeout", operation: "monitorCommand", target: domain },
  );
}
