// The `<domainsnapshot>` documents vmsnap hands to virDomainSnapshotCreateXML, built from data
// (never by string concatenation) so that paths and names with XML-special characters arrive
// intact. Pure: no IO. Two shapes only, because the controller only ever takes these two:
//
// - an external disk-only snapshot of some file disks, each with an explicit qcow2 overlay, and
//   every other disk of the domain `snapshot='no'` (RBD disks are snapshotted by Ceph, never by
//   libvirt; a disk left unmentioned would get libvirt's default, which may be a snapshot);
// - an external memory-only snapshot: RAM to a file, every disk `snapshot='no'` (the disks were
//   already snapshotted at the same instant, with the vCPUs paused in between).
import { XMLBuilder } from "fast-xml-parser";

import { filePathProblem } from "./snapshot-name.ts";

/** A file disk libvirt snapshots: its target and the new qcow2 overlay the domain switches to. */
export interface DiskOverlay {
  /** `<target dev>` of the disk, e.g. `vdb`. */
  readonly target: string;
  /** Absolute path of the overlay file libvirt creates; the old file becomes its backing file. */
  readonly overlay: string;
}

export interface DiskOnlySnapshotSpec {
  readonly name: string;
  readonly description?: string;
  /** The disks to snapshot, at one instant. */
  readonly overlays: readonly DiskOverlay[];
  /** Every disk target of the domain; those without an overlay are written `snapshot='no'`. */
  readonly domainTargets: readonly string[];
}

export interface MemorySnapshotSpec {
  readonly name: string;
  readonly description?: string;
  /** Absolute path of the memory image QEMU writes. */
  readonly file: string;
  /** Every disk target of the domain: all are written `snapshot='no'`. */
  readonly domainTargets: readonly string[];
}

const builder = new XMLBuilder({
  ignoreAttributes: false,
  attributeNamePrefix: "@",
  // `{}` becomes a self-closing element (`<memory snapshot='no'/>`), as libvirt writes them.
  suppressEmptyNode: true,
  format: true,
});

/**
 * An external disk-only snapshot: each overlay disk switches to a new qcow2 file on top of its
 * current one; every other disk of the domain is left alone.
 *
 * @example
 * diskOnlySnapshotXml({
 *   name: "vmsnap-1f0c…",
 *   overlays: [{ target: "vda", overlay: "/var/lib/vms/web.qcow2.vmsnap-1f0c….qcow2" }],
 *   domainTargets: ["vda", "vdb"],   // vdb: snapshot='no'
 * })
 */
export function diskOnlySnapshotXml(spec: DiskOnlySnapshotSpec): string {
  const overlays = new Map<string, string>();
  for (const { target, overlay } of spec.overlays) {
    checkValue("disk target", target);
    checkPath("overlay path", overlay);
    if (overlays.has(target)) throw new Error(`disk ${target} is listed twice`);
    if (!spec.domainTargets.includes(target))
      throw new Error(`disk ${target} is not one of the domain's disks`);
    overlays.set(target, overlay);
  }
  if (overlays.size === 0) throw new Error("a disk-only snapshot needs at least one disk");
  const disks = uniqueTargets(spec.domainTargets).map((target) => {
    const overlay = overlays.get(target);
    if (overlay === undefined) return skipped(target);
    return {
      "@name": target,
      "@snapshot": "external",
      "@type": "file",
      driver: { "@type": "qcow2" },
      source: { "@file": overlay },
    };
  });
  return build(spec.name, spec.description, { "@snapshot": "no" }, disks);
}

/**
 * An external memory-only snapshot: RAM and device state to `file`, no disk touched.
 *
 * @example
 * memorySnapshotXml({ name: "vmsnap-1f0c…-memory", file: "/var/lib/vmsnap/web.mem", domainTargets: ["vda"] })
 */
export function memorySnapshotXml(spec: MemorySnapshotSpec): string {
  checkPath("memory file", spec.file);
  const disks = uniqueTargets(spec.domainTargets).map(skipped);
  return build(spec.name, spec.description, { "@snapshot": "external", "@file": spec.file }, disks);
}

function build(
  name: string,
  description: string | undefined,
  memory: Record<string, string>,
  disks: readonly object[],
): string {
  checkValue("snapshot name", name);
  if (description !== undefined) checkValue("description", description, { allowEmpty: true });
  const snapshot: Record<string, unknown> = { name };
  if (description !== undefined) snapshot.description = description;
  snapshot.memory = memory;
  // `<disks/>` with no children would be fine for libvirt too, but say nothing then.
  if (disks.length > 0) snapshot.disks = { disk: disks };
  return builder.build({ domainsnapshot: snapshot }) as string;
}

function skipped(target: string): object {
  return { "@name": target, "@snapshot": "no" };
}

function uniqueTargets(targets: readonly string[]): string[] {
  for (const target of targets) checkValue("disk target", target);
  return [...new Set(targets)];
}

function checkPath(what: string, path: string): void {
  const problem = filePathProblem(what, path);
  if (problem !== undefined) throw new Error(problem);
}

/**
 * Refuses values XML cannot carry faithfully: control characters are either illegal in XML 1.0
 * or (tab, newline) normalised to a space inside attribute values by libvirt's parser, which
 * would silently name a different file.
 */
function checkValue(what: string, value: string, options: { allowEmpty?: boolean } = {}): void {
  if (typeof value !== "string" || (value === "" && !options.allowEmpty))
    throw new Error(`${what} is empty`);
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\u007f]/.test(value))
    throw new Error(`${what} ${JSON.stringify(value)} contains a control character`);
}
