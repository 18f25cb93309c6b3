// The RBD StorageBackend: the disks of one domain are snapshotted by Ceph, never by libvirt.
// One image gets an image snapshot; several get one group snapshot of the domain's group (named
// after the domain's UUID), whose membership is made equal to the domain's images first.
// Everything is keyed by the request's name (from the VMSnapshot UID), so create, remove and
// rollback can all be retried; removal goes by the handles status recorded.
//
// Membership is set before the freeze, so the frozen window holds the snapshot alone; anyone
// who changes it in between (another host snapshotting a domain of the same UUID, an
// administrator) would have the group snapshot hold other images than status says. `verify`
// compares the group's members with the recorded images once the guest runs again, and the
// snapshot fails (and is removed) on any difference.
//
// Callers must serialise operations per domain (vmsnap runs one snapshot operation per domain
// at a time): `remove` deletes the domain's group once it holds no snapshot.
import type { Disk } from "../../hypervisor/disk.ts";
import type {
  DefinitionRequest,
  DiskSnapshotHandle,
  RemoveRequest,
  RestoredDiskHandle,
  RestoreRequest,
  SnapshotRequest,
  StorageBackend,
} from "../backend.ts";
import type { RbdConfig } from "./config.ts";
import {
  createGroupSnapshot,
  removeGroupSnapshot,
  rollbackGroupSnapshot,
} from "./group-snapshots.ts";
import { StorageError } from "./errors.ts";
import { readDefinition, removeDefinition, storeDefinition } from "./definitions.ts";
import {
  ensureGroup,
  listGroupImages,
  membershipDifference,
  removeGroupIfUnused,
  syncGroupMembers,
} from "./groups.ts";
import {
  createImageSnapshot,
  removeImageSnapshot,
  rollbackImageSnapshot,
} from "./image-snapshots.ts";
import { planRbdSnapshot, type RbdPlan } from "./plan.ts";
import { copyRbdSnapshot, revertRbdSnapshots } from "./snapshot-copy.ts";
import { snapshotRefOf, type RbdSnapshotRef } from "./snapshot-ref.ts";
import { createRbdRunner, type RbdRunner } from "./runner.ts";
import {
  groupPath,
  groupSnapPath,
  imagePath,
  imageSnapPath,
  type GroupSpec,
  type ImageSpec,
} from "./specs.ts";

export interface RbdBackendOptions {
  readonly config: RbdConfig;
  /** Replaces the `rbd` process runner (tests observe or fake every invocation). */
  readonly runner?: RbdRunner;
  /**
   * Benchmark baseline only: snapshot several images one after another instead of one group
   * snapshot. The result is NOT consistent across images; never use it in production.
   */
  readonly sequentialImageSnapshots?: boolean;
}

export class RbdBackend implements StorageBackend {
  readonly kind = "rbd" as const;
  private readonly runner: RbdRunner;
  private readonly config: RbdConfig;
  private readonly sequential: boolean;
  /**
   * Group memberships `prepare` just made equal to a request's images, by request name, so the
   * `create` that follows (inside the frozen window) skips its own `group image list` (~65 ms
   * of rbd start-up on a frozen guest). Used once: a retried or unprepared `create` checks.
   */
  private readonly prepared = new Map<string, string>();

  constructor(options: RbdBackendOptions) {
    this.runner = options.runner ?? createRbdRunner(options.config);
    this.config = options.config;
    this.sequential = options.sequentialImageSnapshots ?? false;
  }

  /** The RBD disk a handle records: `pool/image` or `pool/namespace/image`. */
  diskOf(handle: DiskSnapshotHandle): Disk {
    const parts = handle.source.split("/");
    const [pool, namespace, image] = parts.length === 3 ? parts : [parts[0], undefined, parts[1]];
    return {
      target: handle.target,
      device: "disk",
      readonly: false,
      shareable: false,
      type: "network",
      plan: {
        backend: "rbd",
        rbd: { pool: pool!, ...(namespace ? { namespace } : {}), image: image!, monitors: [] },
      },
    };
  }

  /** What create/remove/rollback will do for `request`; validates every name, starts nothing. */
  plan(request: SnapshotRequest): RbdPlan {
    return planRbdSnapshot(request, { sequentialImageSnapshots: this.sequential });
  }

  /**
   * Optional step before the guest is frozen: creates the domain's group and sets its members,
   * so that the `create` that follows (inside the frozen window) needs only the snapshot.
   */
  async prepare(request: SnapshotRequest): Promise<void> {
    const plan = this.plan(request);
    if (plan.kind !== "group") return;
    this.prepared.delete(request.name);
    await this.ensureMembers(plan.group, plan.images, plan.legacyGroup);
    this.prepared.set(request.name, membershipKey(plan.group, plan.images));
  }

  async create(request: SnapshotRequest): Promise<DiskSnapshotHandle[]> {
    const plan = this.plan(request);
    switch (plan.kind) {
      case "none":
        return [];
      case "image":
        await createImageSnapshot(this.runner, plan.image, plan.name);
        return plan.disks.map((d) => handle(d.target, d.image, imageSnapPath(d.image, plan.name)));
      case "sequential":
        for (const image of plan.images) await createImageSnapshot(this.runner, image, plan.name);
        return plan.disks.map((d) => handle(d.target, d.image, imageSnapPath(d.image, plan.name)));
      case "group": {
        const preparedAs = this.prepared.get(request.name);
        this.prepared.delete(request.name);
        // Per-domain serialisation means nobody of ours changed the group since `prepare`.
        if (preparedAs !== membershipKey(plan.group, plan.images))
          await this.ensureMembers(plan.group, plan.images, plan.legacyGroup);
        await createGroupSnapshot(this.runner, plan.group, plan.name);
        return plan.disks.map((d) =>
          handle(d.target, d.image, groupSnapPath(plan.group, plan.name)),
        );
      }
    }
  }

  /**
   * Removes what status recorded, by the names it records (a group named after the domain by an
   * older release, too); with nothing recorded, what `create` would have made for `disks`.
   */
  async remove(request: RemoveRequest): Promise<void> {
    const refs = (request.recorded ?? []).map(snapshotRefOf);
    if (refs.length > 0) return this.removeRefs(refs);
    const plan = this.plan(request);
    switch (plan.kind) {
      case "none":
        return;
      case "image":
        return removeImageSnapshot(this.runner, plan.image, plan.name);
      case "sequential":
        for (const image of plan.images) await removeImageSnapshot(this.runner, image, plan.name);
        return;
      case "group":
        await removeGroupSnapshot(this.runner, plan.group, plan.name);
        await removeGroupIfUnused(this.runner, plan.group);
        return;
    }
  }

  /**
   * Fails with `MembershipChanged` unless each recorded group's members are exactly the images
   * recorded in it. One `group image list` per group, after the thaw: the frozen window is not
   * lengthened, and a group snapshot, once made, holds what it holds.
   */
  async verify(handles: readonly DiskSnapshotHandle[]): Promise<void> {
    for (const [path, refs] of byGroupSnapshot(handles.map(snapshotRefOf))) {
      const first = refs[0]!;
      if (first.kind !== "group") continue;
      const recorded = refs.map((r) => r.image);
      const { missing, extra } = membershipDifference(
        await listGroupImages(this.runner, first.group),
        recorded,
      );
      if (missing.length === 0 && extra.length === 0) continue;
      const list = (images: readonly ImageSpec[]) => images.map(imagePath).join(", ");
      const changes = [
        ...(extra.length > 0 ? [`now also holds ${list(extra)}`] : []),
        ...(missing.length > 0 ? [`no longer holds ${list(missing)}`] : []),
      ];
      throw new StorageError(
        "MembershipChanged",
        `RBD group ${groupPath(first.group)} changed members around ${path} (${changes.join("; ")}): ` +
          `the group snapshot may hold another VM's images or lack this one's, so it is not kept. ` +
          `Is a domain of the same UUID snapshotted from another host, or was the group edited by hand?`,
      );
    }
  }

  /** In place: the group (or image) snapshot rolled back; each image is the disk again. */
  async revert(request: RestoreRequest): Promise<RestoredDiskHandle[]> {
    await revertRbdSnapshots(this.runner, request.handles.map(snapshotRefOf));
    return request.handles.map((h) => ({
      target: h.target,
      backend: this.kind,
      source: h.source,
      from: h.snapshot,
      method: "Rollback",
    }));
  }

  /**
   * A new domain: each image copied from its snapshot (by id: Ceph 16's CLI cannot read a group
   * snapshot's members) to `<newDomain>-<target>` in the source image's pool.
   */
  async copy(request: RestoreRequest & { newDomain: string }): Promise<RestoredDiskHandle[]> {
    const restored: RestoredDiskHandle[] = [];
    for (const h of request.handles) {
      const ref = snapshotRefOf(h);
      const dest: ImageSpec = { ...ref.image, image: `${request.newDomain}-${h.target}` };
      await copyRbdSnapshot(this.runner, this.config, ref, dest);
      restored.push({
        target: h.target,
        backend: this.kind,
        source: imagePath(dest),
        from: h.snapshot,
        method: "Copy",
      });
    }
    return restored;
  }

  /** As image metadata of the first disk's image (definitions.ts): readable from every node. */
  storeDefinition(request: DefinitionRequest & { readonly xml: string }): Promise<string> {
    return storeDefinition(this.runner, request.name, request.handle, request.xml);
  }

  readDefinition(request: DefinitionRequest): Promise<string | undefined> {
    return readDefinition(this.runner, request.name, request.handle);
  }

  removeDefinition(request: DefinitionRequest): Promise<void> {
    return removeDefinition(this.runner, request.name, request.handle);
  }

  async rollback(request: SnapshotRequest): Promise<void> {
    const plan = this.plan(request);
    switch (plan.kind) {
      case "none":
        return;
      case "image":
        return rollbackImageSnapshot(this.runner, plan.image, plan.name);
      case "sequential":
        for (const image of plan.images) await rollbackImageSnapshot(this.runner, image, plan.name);
        return;
      case "group":
        return rollbackGroupSnapshot(this.runner, plan.group, plan.name);
    }
  }

  /** One `group image list` when nothing changed; creates the group and fixes members otherwise. */
  private async ensureMembers(
    group: GroupSpec,
    images: readonly ImageSpec[],
    legacyGroup: GroupSpec,
  ): Promise<void> {
    const current = await listGroupImages(this.runner, group);
    // The CLI lists a missing group as empty: create it (a no-op when it exists but is empty).
    if (current.length === 0) await ensureGroup(this.runner, group);
    await syncGroupMembers(this.runner, group, images, current, legacyGroup);
  }

  /** Removes each recorded snapshot once (a group snapshot is named by every disk in it). */
  private async removeRefs(refs: readonly RbdSnapshotRef[]): Promise<void> {
    for (const [, [ref]] of byGroupSnapshot(refs)) {
      if (ref!.kind === "image") {
        await removeImageSnapshot(this.runner, ref!.image, ref!.name);
      } else {
        await removeGroupSnapshot(this.runner, ref!.group, ref!.name);
        await removeGroupIfUnused(this.runner, ref!.group);
      }
    }
  }
}

/** Recorded snapshots by what they name: one entry per group snapshot, one per image snapshot. */
function byGroupSnapshot(refs: readonly RbdSnapshotRef[]): Map<string, RbdSnapshotRef[]> {
  const out = new Map<string, RbdSnapshotRef[]>();
  for (const ref of refs) {
    const key =
      ref.kind === "group"
        ? groupSnapPath(ref.group, ref.name)
        : imageSnapPath(ref.image, ref.name);
    out.set(key, [...(out.get(key) ?? []), ref]);
  }
  return out;
}

/** The group and its wanted members, as one comparable string. */
function membershipKey(group: GroupSpec, images: readonly ImageSpec[]): string {
  return [groupPath(group), ...images.map(imagePath).sort()].join(" ");
}

function handle(target: string, image: ImageSpec, snapshot: string): DiskSnapshotHandle {
  return { target, backend: "rbd", source: imagePath(image), snapshot };
}
