// The libvirt file-disk StorageBackend: the file disks of one domain are snapshotted together by
// ONE external disk-only libvirt snapshot (DISK_ONLY | ATOMIC). Each disk switches to a new qcow2
// overlay next to it; its old file, now the overlay's backing file, holds the point-in-time
// content. Every other disk of the domain (RBD disks, which Ceph snapshots) is `snapshot='no'`.
// No QUIESCE flag: the controller froze the guest itself.
//
// Keyed by the request's name: `create` finds an existing libvirt snapshot of that name and
// returns its handles without creating anything; `remove` succeeds when it is already gone.
//
// What `remove` does on libvirt 9.0 (measured on a running QEMU guest, see
// test/e2e/file-disk-backend.test.ts): deleting the snapshot commits each overlay back into its
// backing file (block commit, the domain keeps running), switches the disk back to that file and
// deletes the overlay file; the snapshot metadata goes too. Nothing of the snapshot remains: the
// original files hold the current data. Works as well for a snapshot below a newer one (the newer
// overlay is rebased), with a memory snapshot as its child, and on a shut-off domain.
//
// After an in-place restore (src/storage/libvirt-file/restore.ts) the domain runs on a new overlay
// on the snapshot's backing file; then `remove` deletes only the metadata and the stale overlay.
import { rm, stat } from "node:fs/promises";
import { dirname, join } from "node:path";

import type { Hypervisor } from "../../hypervisor/connection.ts";
import { parseDisks } from "../../hypervisor/disk-inventory.ts";
import { HypervisorError } from "../../hypervisor/errors.ts";
import {
  DomainXmlFlags,
  SnapshotCreateFlags,
  SnapshotDeleteFlags,
} from "../../hypervisor/flags.ts";
import { readSnapshot, referencedFiles } from "../../hypervisor/snapshot-read.ts";
import { assertValid, filePathProblem } from "../../hypervisor/snapshot-name.ts";
import { diskOnlySnapshotXml, type DiskOverlay } from "../../hypervisor/snapshot-xml.ts";
import type { Disk } from "../../hypervisor/disk.ts";
import type {
  DefinitionRequest,
  DiskSnapshotHandle,
  RestoredDiskHandle,
  RestoreRequest,
  SnapshotRequest,
  StorageBackend,
} from "../backend.ts";
import { readDefinitionFile, removeDefinitionFile, storeDefinitionFile } from "./definitions.ts";
import { copyFileDisk, createRevertOverlay, revertOverlayPath } from "./restore.ts";
import {
  assertOverlaysUsable,
  overlayPath,
  planFileSnapshot,
  type FileSnapshotPlan,
} from "./plan.ts";

/** The parts of the Hypervisor this backend uses. */
export type LibvirtFilePort = Pick<
  Hypervisor,
  "domainXml" | "createSnapshot" | "listSnapshots" | "snapshotXml" | "deleteSnapshot"
>;

export interface LibvirtFileBackendOptions {
  readonly hypervisor: LibvirtFilePort;
  /** Deadline of each libvirt call of `create`; default the adapter's call timeout. */
  readonly createTimeoutMs?: number;
  /**
   * Deadline of the snapshot deletion in `remove`. Deletion merges every overlay into its backing
   * file, so it grows with what the guest wrote since the snapshot. Default 10 minutes.
   */
  readonly removeTimeoutMs?: number;
}

const DEFAULT_REMOVE_TIMEOUT_MS = 600_000;

/** The file disk a handle records: its source is the file the snapshot was taken of. */
export function fileDiskOf(handle: DiskSnapshotHandle): Disk {
  return {
    target: handle.target,
    device: "disk",
    readonly: false,
    shareable: false,
    type: "file",
    plan: { backend: "libvirt-file", file: { path: handle.source } },
  };
}

export class LibvirtFileBackend implements StorageBackend {
  readonly kind = "libvirt-file" as const;
  private readonly hv: LibvirtFilePort;
  private readonly createOptions: { timeoutMs?: number };
  private readonly removeTimeoutMs: number;

  constructor(options: LibvirtFileBackendOptions) {
    this.hv = options.hypervisor;
    this.createOptions =
      options.createTimeoutMs === undefined ? {} : { timeoutMs: options.createTimeoutMs };
    this.removeTimeoutMs = options.removeTimeoutMs ?? DEFAULT_REMOVE_TIMEOUT_MS;
  }

  diskOf(handle: DiskSnapshotHandle): Disk {
    return fileDiskOf(handle);
  }

  /** One atomic external snapshot of all `disks`; a no-op returning the same handles if it exists. */
  async create(request: SnapshotRequest): Promise<DiskSnapshotHandle[]> {
    const plan = planFileSnapshot(request, "createSnapshot");
    if (plan.disks.length === 0) return [];
    const { domain, name } = plan;
    const existing = await this.hv.listSnapshots(domain, this.createOptions);
    if (existing.includes(name)) {
      return handlesOfExisting(plan, await this.hv.snapshotXml(domain, name, this.createOptions));
    }

    const domainXml = await this.hv.domainXml(domain, this.createOptions);
    const live = new Map(parseDisks(domainXml).map((d) => [d.target, d]));
    // The live XML, not the request, says which file each disk uses now: that file becomes the
    // backing file, so it is what the handle must name.
    const sources = plan.disks.map(({ target }) => {
      const disk = live.get(target);
      if (disk?.plan.backend !== "libvirt-file") {
        throw new HypervisorError(
          `createSnapshot(${domain}): ${target} is ${disk === undefined ? "not a disk of the domain" : `no longer a file disk (${disk.plan.backend})`}`,
          {
            reason: disk === undefined ? "InvalidArgument" : "Unsupported",
            operation: "createSnapshot",
            target: domain,
          },
        );
      }
      const path = disk.plan.file.path;
      assertValid("createSnapshot", domain, [filePathProblem(`source of ${target}`, path)]);
      return { target, path };
    });
    const names = new Set(existing);
    const overlays: DiskOverlay[] = sources.map(({ target, path }) => ({
      target,
      overlay: overlayPath(path, name, names),
    }));
    assertOverlaysUsable(domain, overlays);
    await this.removeUnreferenced(
      domain,
      overlays.map((o) => o.overlay),
      domainXml,
    );

    const xml = diskOnlySnapshotXml({
      name,
      overlays,
      domainTargets: [...live.keys()].filter((t) => t !== ""),
    });
    await this.hv.createSnapshot(
      domain,
      xml,
      SnapshotCreateFlags.DiskOnly | SnapshotCreateFlags.Atomic,
      this.createOptions,
    );
    return sources.map(({ target, path }) => handle(domain, name, target, path));
  }

  /**
   * Deletes the libvirt snapshot (libvirt merges the overlays back, see the header), then any
   * overlay file of this name libvirt no longer references. Succeeds when already gone. A domain
   * that no longer exists took the metadata with it; its files are left alone, since an overlay
   * may then hold the only copy of the disk's newest data.
   */
  async remove(request: SnapshotRequest): Promise<void> {
    const plan = planFileSnapshot(request, "deleteSnapshot");
    if (plan.disks.length === 0) return;
    const { domain, name } = plan;
    let existing: string[];
    try {
      existing = await this.hv.listSnapshots(domain);
    } catch (err) {
      if (isReason(err, "DomainNotFound")) return;
      throw err;
    }
    // The request's paths may be the originals (from status) or the overlays (a fresh
    // inventory); overlayPath maps both to the same file.
    const names = new Set(existing);
    const candidates = new Set(plan.disks.map((d) => overlayPath(d.path, name, names)));
    if (names.has(name)) {
      const record = readSnapshot(await this.hv.snapshotXml(domain, name));
      for (const overlay of record.overlays.values()) candidates.add(overlay);
      const detached = await this.detachedByRestore(domain, [...record.overlays.values()]);
      try {
        await this.hv.deleteSnapshot(
          domain,
          name,
          detached ? SnapshotDeleteFlags.MetadataOnly : 0,
          { timeoutMs: this.removeTimeoutMs },
        );
      } catch (err) {
        if (!isReason(err, "SnapshotNotFound")) throw err;
      }
      // An overlay another snapshot still stands on holds that snapshot's content: keep it.
      if (detached) for (const f of await this.backingOfOthers(domain, name)) candidates.delete(f);
    }
    await this.removeUnreferenced(domain, [...candidates]);
  }

  /**
   * True when the domain no longer uses any of the snapshot's overlays: a restore re-pointed
   * its disks at new overlays on the snapshot's backing files. libvirt 9.0 then refuses the
   * delete ("could not find base disk source in disk source chain", measured), and merging would
   * be wrong anyway: the backing files are what the restored disks stand on. So only the
   * metadata goes, and the overlays (the writes made after the snapshot) as unreferenced files.
   */
  private async detachedByRestore(domain: string, overlays: readonly string[]): Promise<boolean> {
    if (overlays.length === 0) return false;
    const live = await this.hv.domainXml(domain, this.createOptions);
    const persistent = await this.hv.domainXml(domain, {
      ...this.createOptions,
      flags: DomainXmlFlags.Inactive,
    });
    const used = new Set([...referencedFiles(live), ...referencedFiles(persistent)]);
    return overlays.every((o) => !used.has(o));
  }

  /** The files the domain's other snapshots record as their disks' sources (their content). */
  private async backingOfOthers(domain: string, name: string): Promise<Set<string>> {
    const files = new Set<string>();
    for (const other of await this.hv.listSnapshots(domain, this.createOptions)) {
      if (other === name) continue;
      const record = readSnapshot(await this.hv.snapshotXml(domain, other, this.createOptions));
      for (const f of record.sourcesBefore.values()) files.add(f);
    }
    return files;
  }

  /**
   * In place: libvirt 9.0 cannot revert an external snapshot (code 67), so each disk gets a new
   * overlay on the snapshot's file (the handle's source), named after the restore; the snapshot's
   * own overlay and later snapshots' files stay valid.
   */
  async revert(request: RestoreRequest): Promise<RestoredDiskHandle[]> {
    const restored: RestoredDiskHandle[] = [];
    for (const h of request.handles) {
      const overlay = revertOverlayPath(h.source, request.name);
      await createRevertOverlay(h.source, overlay);
      restored.push({
        target: h.target,
        backend: this.kind,
        source: overlay,
        from: h.snapshot,
        method: "Overlay",
      });
    }
    return restored;
  }

  /**
   * A new domain: a self-contained qcow2 copy of the snapshot's file next to it, named
   * `<newDomain>-<target>.qcow2` (an overlay sharing the backing file would break when the
   * snapshot's deletion commits into that file).
   */
  async copy(request: RestoreRequest & { newDomain: string }): Promise<RestoredDiskHandle[]> {
    const restored: RestoredDiskHandle[] = [];
    for (const h of request.handles) {
      const dest = join(dirname(h.source), `${request.newDomain}-${h.target}.qcow2`);
      await copyFileDisk(h.source, dest);
      restored.push({
        target: h.target,
        backend: this.kind,
        source: dest,
        from: h.snapshot,
        method: "Copy",
      });
    }
    return restored;
  }

  /** As a 0600 file beside the disk (definitions.ts). */
  storeDefinition(request: DefinitionRequest & { readonly xml: string }): Promise<string> {
    return storeDefinitionFile(request.name, request.handle, request.xml);
  }

  readDefinition(request: DefinitionRequest): Promise<string | undefined> {
    return readDefinitionFile(request.name, request.handle);
  }

  removeDefinition(request: DefinitionRequest): Promise<void> {
    return removeDefinitionFile(request.name, request.handle);
  }

  async rollback(request: SnapshotRequest): Promise<void> {
    const plan = planFileSnapshot(request, "restore");
    throw new HypervisorError(
      `rollback(${plan.domain}@${plan.name}): libvirt 9.0 cannot revert to an external snapshot; ` +
        "restore by hand: shut the domain off and point each disk at a new overlay on the snapshot's backing file",
      { reason: "Unsupported", operation: "restore", target: plan.domain },
    );
  }

  /**
   * Deletes those of `files` that exist but that neither the live nor the persistent domain
   * definition references (leftovers of an attempt that died between file and metadata). A file
   * libvirt still uses is never touched.
   */
  private async removeUnreferenced(
    domain: string,
    files: readonly string[],
    liveXml?: string,
  ): Promise<void> {
    const present = (
      await Promise.all(files.map(async (f) => ((await exists(f)) ? f : undefined)))
    ).filter((f) => f !== undefined);
    if (present.length === 0) return;
    const live = liveXml ?? (await this.hv.domainXml(domain, this.createOptions));
    const persistent = await this.hv.domainXml(domain, {
      ...this.createOptions,
      flags: DomainXmlFlags.Inactive,
    });
    const used = new Set([...referencedFiles(live), ...referencedFiles(persistent)]);
    for (const file of present) if (!used.has(file)) await rm(file, { force: true });
  }
}

/** The handles of a snapshot that already exists, if it covers exactly the requested disks. */
function handlesOfExisting(plan: FileSnapshotPlan, xml: string): DiskSnapshotHandle[] {
  const record = readSnapshot(xml);
  const requested = plan.disks.map((d) => d.target);
  const taken = [...record.overlays.keys()];
  const same = requested.length === taken.length && requested.every((t) => record.overlays.has(t));
  assertValid("createSnapshot", plan.domain, [
    same
      ? undefined
      : `snapshot ${plan.name} exists for disks [${taken.join(", ")}], not [${requested.join(", ")}]`,
  ]);
  return plan.disks.map(({ target, path }) =>
    handle(plan.domain, plan.name, target, record.sourcesBefore.get(target) ?? path),
  );
}

function handle(domain: string, name: string, target: string, source: string): DiskSnapshotHandle {
  return { target, backend: "libvirt-file", source, snapshot: `${domain}@${name}` };
}

function isReason(err: unknown, reason: HypervisorError["reason"]): boolean {
  return err instanceof HypervisorError && err.reason === reason;
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
