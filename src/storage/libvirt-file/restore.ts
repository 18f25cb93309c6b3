// Restore of file disks from a libvirt external disk-only snapshot, by hand: libvirt 9.0 cannot
// revert to an external snapshot (code 67). The snapshot's point-in-time content is its backing
// file — the file the disk used when the snapshot was taken (status `disks[].source`), which
// libvirt never writes again while the snapshot exists. So:
//
// - in place: a NEW, empty qcow2 overlay on that backing file, and the domain's disk pointed at it
//   (restoreDomainXml). The snapshot's own overlay (the writes made after it) and any later
//   snapshot's files stay untouched, so later snapshots keep their data;
// - for a new domain: a full, independent copy of the backing chain (`qemu-img convert`), because
//   the source domain's next snapshot deletion commits its overlay INTO that backing file
//   (block commit), which would corrupt any other overlay still built on it.
//
// Both are idempotent and crash-safe: the in-place overlay is kept when it already exists on the
// right backing file (a restored guest may already have written to it); the copy is written to
// `<dest>.partial` and renamed when complete.
import { execFile } from "node:child_process";
import { rename, rm, stat } from "node:fs/promises";
import { basename, dirname, join } from "node:path";

import { HypervisorError } from "../../hypervisor/errors.ts";
import {
  assertValid,
  filePathProblem,
  snapshotNameProblem,
} from "../../hypervisor/snapshot-name.ts";

export interface QemuImgOptions {
  /** The executable; default `qemu-img` from PATH. */
  readonly qemuImgPath?: string;
  /** Deadline of one qemu-img run; a full copy grows with the disk. Default 10 minutes. */
  readonly timeoutMs?: number;
}

/** What `qemu-img info` says of an image, as far as a restore cares. */
export interface ImageInfo {
  readonly format: string;
  readonly virtualSize: number;
  /** The backing file as recorded in the qcow2 header, if any. */
  readonly backingFile: string | undefined;
}

const DEFAULT_TIMEOUT_MS = 600_000;

/**
 * The in-place restore's overlay for a disk whose snapshot content is `backing`: next to it,
 * named after the restore, so two restores of one snapshot never share an overlay.
 *
 * @example revertOverlayPath("/vms/web.qcow2", "vmrestore-4b9c") // "/vms/web.qcow2.vmrestore-4b9c.qcow2"
 */
export function revertOverlayPath(backing: string, restoreName: string): string {
  assertValid("restore", backing, [
    snapshotNameProblem(restoreName),
    filePathProblem("backing file", backing),
  ]);
  return join(dirname(backing), `${basename(backing)}.${restoreName}.qcow2`);
}

/**
 * Creates the empty qcow2 overlay `overlay` on `backing` (absolute backing path, its format
 * recorded so QEMU never probes it). Returns false when it already existed on that backing file.
 * Throws InvalidArgument when `overlay` exists but is something else: never overwritten.
 */
export async function createRevertOverlay(
  backing: string,
  overlay: string,
  options: QemuImgOptions = {},
): Promise<boolean> {
  assertValid("restore", overlay, [
    filePathProblem("backing file", backing),
    filePathProblem("overlay", overlay),
  ]);
  if (await exists(overlay)) {
    const info = await imageInfo(overlay, options);
    if (info.format === "qcow2" && info.backingFile === backing) return false;
    throw new HypervisorError(
      `restore: ${overlay} exists and is not an overlay on ${backing} (backing ${info.backingFile ?? "none"})`,
      { reason: "InvalidArgument", operation: "restore", target: overlay },
    );
  }
  const backingInfo = await imageInfo(backing, options);
  const partial = `${overlay}.partial`;
  await rm(partial, { force: true });
  await qemuImg(
    ["create", "-q", "-f", "qcow2", "-b", backing, "-F", backingInfo.format, partial],
    options,
  );
  await rename(partial, overlay);
  return true;
}

/**
 * A self-contained qcow2 copy of `source` and its whole backing chain at `dest`, for a new
 * domain. Returns false when `dest` already exists as a complete copy (a retry). `source` is the
 * snapshot's backing file: nothing writes it while the snapshot exists.
 */
export async function copyFileDisk(
  source: string,
  dest: string,
  options: QemuImgOptions = {},
): Promise<boolean> {
  assertValid("restore", dest, [filePathProblem("source", source), filePathProblem("copy", dest)]);
  if (await exists(dest)) return false;
  const partial = `${dest}.partial`;
  await rm(partial, { force: true });
  const info = await imageInfo(source, options);
  // -U: the chain's top may be open by the running source domain; its snapshot content is not
  // written by anyone (see the header).
  await qemuImg(
    ["convert", "-U", "-q", "-f", info.format, "-O", "qcow2", source, partial],
    options,
  );
  await rename(partial, dest);
  return true;
}

/** Removes a restore's file (overlay or copy) and its partial leftover; succeeds when gone. */
export async function removeRestoredFile(path: string): Promise<void> {
  assertValid("restore", path, [filePathProblem("restored file", path)]);
  await rm(`${path}.partial`, { force: true });
  await rm(path, { force: true });
}

/** `qemu-img info` of one image (not its chain), with -U: it may be in use. */
export async function imageInfo(path: string, options: QemuImgOptions = {}): Promise<ImageInfo> {
  const stdout = await qemuImg(["info", "-U", "--output", "json", path], options);
  const info = JSON.parse(stdout) as {
    format: string;
    "virtual-size": number;
    "full-backing-filename"?: string;
    "backing-filename"?: string;
  };
  return {
    format: info.format,
    virtualSize: info["virtual-size"],
    backingFile: info["full-backing-filename"] ?? info["backing-filename"],
  };
}

function qemuImg(args: readonly string[], options: QemuImgOptions): Promise<string> {
  const command = options.qemuImgPath ?? "qemu-img";
  return new Promise((resolve, reject) => {
    execFile(
      command,
      args,
      {
        encoding: "utf8",
        timeout: options.timeoutMs ?? DEFAULT_TIMEOUT_MS,
        killSignal: "SIGKILL",
        maxBuffer: 4 * 1024 * 1024,
      },
      (error, stdout, stderr) => {
        if (!error) return resolve(stdout);
        const killed = (error as { killed?: boolean }).killed === true;
        reject(
          new HypervisorError(
            `qemu-img ${args.join(" ")}: ${killed ? "timed out" : stderr.trim() || error.message}`,
            {
              reason: killed ? "Timeout" : "Unknown",
              operation: "restore",
              target: args.at(-1) ?? "",
            },
          ),
        );
      },
    );
  });
}

async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return false;
    throw err;
  }
}
