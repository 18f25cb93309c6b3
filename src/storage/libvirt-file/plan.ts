// Pure: a snapshot request checked for the libvirt file backend, and where each disk's overlay
// goes. Every name and path is validated before libvirt is asked anything.
//
// Overlay naming: `<dir>/<stem>.<name>.qcow2`, next to the disk, so it lives on the same storage
// and under the same permissions. The stem is the disk file's name — unless that file is itself
// an overlay of a snapshot the domain still has (`vda.qcow2.<older>.qcow2`), whose suffix is
// dropped: chains of retained snapshots then give `vda.qcow2.<name>.qcow2` each time instead of
// names that grow by one suffix per snapshot until they pass NAME_MAX.
import { basename, dirname, join } from "node:path";

import type { Disk } from "../../hypervisor/disk.ts";
import { HypervisorError, type Operation } from "../../hypervisor/errors.ts";
import {
  assertValid,
  filePathProblem,
  snapshotNameProblem,
} from "../../hypervisor/snapshot-name.ts";
import type { SnapshotRequest } from "../backend.ts";

export interface PlannedFileDisk {
  readonly target: string;
  /** The disk's file as the caller saw it. */
  readonly path: string;
}

export interface FileSnapshotPlan {
  readonly domain: string;
  readonly name: string;
  readonly disks: readonly PlannedFileDisk[];
}

/** Longest file name most Linux filesystems accept, in bytes. */
const NAME_MAX = 255;

/** Validates the request; throws HypervisorError (InvalidArgument, or Unsupported for a non-file disk). */
export function planFileSnapshot(request: SnapshotRequest, operation: Operation): FileSnapshotPlan {
  const { domain, name } = request;
  assertValid(operation, domain, [snapshotNameProblem(name)]);
  const seen = new Set<string>();
  const disks = request.disks.map((disk) => {
    const path = fileOf(disk, domain, operation);
    assertValid(operation, domain, [
      disk.target === "" ? "a disk has no target" : undefined,
      seen.has(disk.target) ? `disk ${disk.target} is listed twice` : undefined,
      filePathProblem(`source of ${disk.target}`, path),
    ]);
    seen.add(disk.target);
    return { target: disk.target, path };
  });
  return { domain, name, disks };
}

/**
 * Where libvirt puts the overlay of the disk whose current file is `source`. `snapshots` are the
 * names of the domain's snapshots (whose overlay suffix may be dropped, see the header).
 *
 * @example overlayPath("/vms/web.qcow2", "vmsnap-1", new Set())              // "/vms/web.qcow2.vmsnap-1.qcow2"
 * @example overlayPath("/vms/web.qcow2.vmsnap-1.qcow2", "vmsnap-2", new Set(["vmsnap-1"]))
 *          // "/vms/web.qcow2.vmsnap-2.qcow2"
 */
export function overlayPath(source: string, name: string, snapshots: ReadonlySet<string>): string {
  let stem = basename(source);
  const suffix = /^(.+)\.([^.]+)\.qcow2$/.exec(stem);
  if (suffix && (suffix[2] === name || snapshots.has(suffix[2]!))) stem = suffix[1]!;
  return join(dirname(source), `${stem}.${name}.qcow2`);
}

/** Throws unless every overlay is distinct and its file name fits the filesystem. */
export function assertOverlaysUsable(
  domain: string,
  overlays: ReadonlyArray<{ readonly target: string; readonly overlay: string }>,
): void {
  const byPath = new Map<string, string>();
  const problems = overlays.map(({ target, overlay }) => {
    const other = byPath.get(overlay);
    byPath.set(overlay, target);
    if (other !== undefined) return `disks ${other} and ${target} would share overlay ${overlay}`;
    if (Buffer.byteLength(basename(overlay)) > NAME_MAX)
      return `overlay file name for ${target} is longer than ${NAME_MAX} bytes: ${overlay}`;
    return undefined;
  });
  assertValid("createSnapshot", domain, problems);
}

function fileOf(disk: Disk, domain: string, operation: Operation): string {
  if (disk.plan.backend === "libvirt-file") return disk.plan.file.path;
  throw new HypervisorError(
    `${operation}(${domain}): disk ${disk.target} is not a file disk (${disk.plan.backend}); the libvirt file backend cannot snapshot it`,
    { reason: "Unsupported", operation, target: domain },
  );
}
