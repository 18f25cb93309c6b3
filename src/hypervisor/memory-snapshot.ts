// The memory half of a VM snapshot: the guest's RAM and device state saved to a file by a libvirt
// external memory-only snapshot, with every disk `snapshot='no'` (the disks were snapshotted by
// their backends at the same instant). The controller pauses the vCPUs before the disks and
// resumes them after this; nothing here pauses or resumes.
//
// Measured on libvirt 9.0 / QEMU 7.2 (docs/libvirt-facts.md, test/e2e/file-disk-backend.test.ts):
// - a paused 128 MiB guest saves in ~0.2 s; libvirt leaves it paused afterwards;
// - a full delete of a memory-only external snapshot fails with code 1 and no message, so the
//   metadata is deleted with METADATA_ONLY — there is no disk data to merge anyway — and the
//   file, which libvirt never deletes, is removed here;
// - the test driver accepts the snapshot (every disk `snapshot='no'`) but writes no file, and
//   refuses METADATA_ONLY on delete (code 8).
//
// The libvirt snapshot is named `<name>.memory`: the controller uses one name per VMSnapshot for
// every backend, a domain cannot hold two snapshots of one name, and a dot never appears in a
// disk snapshot's name (see snapshot-name.ts), so the two can never collide.
import { chmod, rm, stat } from "node:fs/promises";

import type { Hypervisor } from "./connection.ts";
import { parseDisks } from "./disk-inventory.ts";
import { HypervisorError, outcomeUnknown } from "./errors.ts";
import { SnapshotDeleteFlags } from "./flags.ts";
import { assertValid, filePathProblem, snapshotNameProblem } from "./snapshot-name.ts";
import { memorySnapshotXml } from "./snapshot-xml.ts";
import { readSnapshot } from "./snapshot-read.ts";

/** The parts of the Hypervisor the memory snapshot uses. */
export type MemorySnapshotPort = Pick<
  Hypervisor,
  | "domainXml"
  | "createSnapshot"
  | "listSnapshots"
  | "snapshotXml"
  | "deleteSnapshot"
  | "abortJob"
  | "jobActive"
>;

/** How long an aborted save may take to stop before vmsnap gives up waiting for it. */
const ABORT_WAIT_MS = 30_000;

export interface SaveMemoryRequest {
  readonly domain: string;
  /** The VMSnapshot's backend name (`vmsnap-<uid>`); the libvirt snapshot is `<name>.memory`. */
  readonly name: string;
  /** Absolute path of the memory image; its folder must exist. */
  readonly file: string;
  /** Disk targets the caller knows of; the domain's current ones are added, all get `snapshot='no'`. */
  readonly diskTargets: readonly string[];
  /** Budget for the whole save; the controller's vCPU pause lasts at least this long at worst. */
  readonly timeoutMs: number;
}

export interface RemoveMemoryRequest {
  readonly domain: string;
  readonly name: string;
  readonly file: string;
  readonly timeoutMs?: number;
}

/** A saved memory image; `bytes` is 0 when the driver writes no file (the test driver). */
export interface MemoryImage {
  readonly file: string;
  readonly bytes: number;
}

/** Owner read/write only: a memory image holds everything the guest had in RAM, keys included. */
export const MEMORY_FILE_MODE = 0o600;

/** The libvirt snapshot name of the memory image of backend snapshot `name`. */
export function memorySnapshotName(name: string): string {
  return `${name}.memory`;
}

/**
 * Saves the domain's RAM to `file` as an external memory-only snapshot. Idempotent: when the
 * snapshot already exists it only reports the file. A file left without a snapshot by an earlier
 * attempt is stale (the vCPUs ran on since) and is replaced.
 *
 * @example
 * await hv.suspend(domain);
 * try { image = await saveMemory(hv, { domain, name, file, diskTargets, timeoutMs: 10_000 }); }
 * finally { await hv.resume(domain); }
 */
export async function saveMemory(
  hv: MemorySnapshotPort,
  request: SaveMemoryRequest,
): Promise<MemoryImage> {
  const { domain, name, file } = request;
  assertValid("createSnapshot", domain, [
    snapshotNameProblem(name),
    filePathProblem("memory file", file),
  ]);
  const deadline = Date.now() + request.timeoutMs;
  const left = () => ({ timeoutMs: Math.max(1, deadline - Date.now()) });
  const snapshot = memorySnapshotName(name);

  if ((await hv.listSnapshots(domain, left())).includes(snapshot)) {
    const existing = readSnapshot(await hv.snapshotXml(domain, snapshot, left()));
    if (existing.memoryFile !== file) {
      throw new HypervisorError(
        `createSnapshot(${domain}): snapshot ${snapshot} exists with memory file ${existing.memoryFile ?? "(none)"}, not ${file}`,
        { reason: "InvalidArgument", operation: "createSnapshot", target: domain },
      );
    }
    return { file, bytes: await secureFile(file) };
  }

  await rm(file, { force: true });
  // Every disk must say `snapshot='no'`: one left out would get an external overlay by default.
  const live = parseDisks(await hv.domainXml(domain, left())).map((d) => d.target);
  const domainTargets = [...new Set([...request.diskTargets, ...live])].filter((t) => t !== "");
  const xml = memorySnapshotXml({ name: snapshot, file, domainTargets });
  // Flags 0, not LIVE: the vCPUs are paused, so RAM is written once, as it was at the pause.
  try {
    await hv.createSnapshot(domain, xml, 0, left());
  } catch (err) {
    // Given up on, not failed: the save may still be running.
    if (outcomeUnknown(err)) {
      await abortSave(hv, domain, snapshot, file);
    }
    throw err;
  }
  return { file, bytes: await secureFile(file) };
}

/**
 * A save past its budget only stopped our wait: QEMU goes on writing the file, libvirt would
 * record a snapshot pointing at a file the caller removes, and the running job holds up the
 * resume. So the job is aborted and waited for, and whatever it left (the file, a snapshot
 * recorded just before the abort landed) removed, before the caller resumes the guest.
 */
async function abortSave(
  hv: MemorySnapshotPort,
  domain: string,
  snapshot: string,
  file: string,
): Promise<void> {
  const call = { timeoutMs: 5_000 };
  await hv.abortJob(domain, call).catch((err: unknown) => {
    // No job (it finished or failed just now) is fine; anything else, the wait below judges.
    if (!(err instanceof HypervisorError)) throw err;
  });
  const until = Date.now() + ABORT_WAIT_MS;
  while (Date.now() < until && (await hv.jobActive(domain, call).catch(() => false))) {
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  if ((await hv.listSnapshots(domain, call).catch((): string[] => [])).includes(snapshot)) {
    await hv.deleteSnapshot(domain, snapshot, SnapshotDeleteFlags.MetadataOnly, call);
  }
  await rm(file, { force: true });
}

/**
 * Deletes the memory snapshot's metadata (if present) and its file. Idempotent; a domain that is
 * gone took the metadata with it, and the file is still removed.
 */
export async function removeMemory(
  hv: MemorySnapshotPort,
  request: RemoveMemoryRequest,
): Promise<void> {
  const { domain, name, file } = request;
  assertValid("deleteSnapshot", domain, [
    snapshotNameProblem(name),
    filePathProblem("memory file", file),
  ]);
  const options = request.timeoutMs === undefined ? undefined : { timeoutMs: request.timeoutMs };
  const snapshot = memorySnapshotName(name);
  try {
    if ((await hv.listSnapshots(domain, options)).includes(snapshot)) {
      await deleteMetadata(hv, domain, snapshot, options);
    }
  } catch (err) {
    const gone =
      err instanceof HypervisorError &&
      (err.reason === "DomainNotFound" || err.reason === "SnapshotNotFound");
    if (!gone) throw err;
  }
  await rm(file, { force: true });
}

/**
 * METADATA_ONLY, because QEMU's full delete of a memory-only snapshot fails (code 1, see the
 * header); drivers that refuse the flag (the test driver: code 8, Unsupported) get a plain
 * delete, which for them removes only metadata anyway.
 */
async function deleteMetadata(
  hv: MemorySnapshotPort,
  domain: string,
  snapshot: string,
  options: { timeoutMs: number } | undefined,
): Promise<void> {
  try {
    await hv.deleteSnapshot(domain, snapshot, SnapshotDeleteFlags.MetadataOnly, options);
  } catch (err) {
    if (!(err instanceof HypervisorError && err.reason === "Unsupported")) throw err;
    await hv.deleteSnapshot(domain, snapshot, 0, options);
  }
}

/** Makes the image owner-only if the driver created it otherwise; its size, 0 if there is none. */
async function secureFile(file: string): Promise<number> {
  try {
    const info = await stat(file);
    if ((info.mode & 0o777) !== MEMORY_FILE_MODE) await chmod(file, MEMORY_FILE_MODE);
    return info.size;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return 0;
    throw err;
  }
}
