// Pure: from a snapshot request to what the RBD backend will do, with every name validated
// before any process starts. One image → one image snapshot; several → one group snapshot
// (atomic across images), unless the benchmark-only sequential mode asks for one per image.
//
// Layout rule: Ceph lets a group hold images of other pools but not of other RADOS namespaces
// (measured: "group and image namespace must match", EINVAL). So a domain's images may span
// pools — the group lives in the pool of the disk with the first target (usually the boot disk,
// which rarely moves) — but a domain whose images span namespaces is refused, because per-
// namespace groups would silently give up atomicity.
//
// The group is named after the domain's UUID, not its name (names.ts): another host's domain of
// the same name on the same pool must never share it.
import type { Disk } from "../../hypervisor/disk.ts";
import type { SnapshotRequest } from "../backend.ts";
import { StorageError } from "./errors.ts";
import { assertValidName, groupNameForDomainUUID, legacyGroupNameForDomain } from "./names.ts";
import { assertValidImageSpec, sameNamespace, type GroupSpec, type ImageSpec } from "./specs.ts";

export interface PlannedDisk {
  readonly target: string;
  readonly image: ImageSpec;
}

export type RbdPlan =
  | { readonly kind: "none" }
  | {
      readonly kind: "image";
      readonly name: string;
      readonly disks: readonly PlannedDisk[];
      readonly image: ImageSpec;
    }
  | {
      readonly kind: "group";
      readonly name: string;
      readonly disks: readonly PlannedDisk[];
      readonly group: GroupSpec;
      readonly images: readonly ImageSpec[];
      /** The group an older release named after the domain: its images are moved to `group`. */
      readonly legacyGroup: GroupSpec;
    }
  | {
      readonly kind: "sequential";
      readonly name: string;
      readonly disks: readonly PlannedDisk[];
      readonly images: readonly ImageSpec[];
    };

export interface PlanOptions {
  /** Benchmark baseline only: one snapshot per image, one after another. Not crash-consistent across images. */
  readonly sequentialImageSnapshots?: boolean;
}

/** Validates the request and decides image, group or sequential snapshots. Throws StorageError. */
export function planRbdSnapshot(request: SnapshotRequest, options: PlanOptions = {}): RbdPlan {
  assertValidName("snapshot", request.name);
  const disks = request.disks.map(toPlannedDisk);
  if (disks.length === 0) return { kind: "none" };
  const images = distinctImages(disks.map((d) => d.image));
  if (images.length === 1) return { kind: "image", name: request.name, disks, image: images[0]! };
  if (options.sequentialImageSnapshots)
    return { kind: "sequential", name: request.name, disks, images };

  const namespace = images[0]!.namespace;
  const other = images.find((i) => !sameNamespace(i.namespace, namespace));
  if (other) {
    throw new StorageError(
      "UnsupportedLayout",
      `domain ${request.domain}: RBD disks are in different namespaces (${namespace || "(default)"} and ` +
        `${other.namespace || "(default)"}); Ceph groups cannot span namespaces, so no atomic snapshot is possible`,
    );
  }
  if (request.domainUUID === undefined) {
    throw new StorageError(
      "InvalidName",
      `domain ${request.domain}: no domain UUID to name its RBD group after`,
    );
  }
  const first = [...disks].sort((a, b) => a.target.localeCompare(b.target))[0]!;
  const where = { pool: first.image.pool, ...(namespace ? { namespace } : {}) };
  const group: GroupSpec = { ...where, group: groupNameForDomainUUID(request.domainUUID) };
  const legacyGroup: GroupSpec = { ...where, group: legacyGroupNameForDomain(request.domain) };
  return { kind: "group", name: request.name, disks, group, images, legacyGroup };
}

function toPlannedDisk(disk: Disk): PlannedDisk {
  if (disk.plan.backend !== "rbd") {
    throw new StorageError(
      "UnsupportedLayout",
      `disk ${disk.target} is not an RBD disk (${disk.plan.backend}); the RBD backend cannot snapshot it`,
    );
  }
  const { pool, namespace, image } = disk.plan.rbd;
  const spec: ImageSpec = namespace ? { pool, namespace, image } : { pool, image };
  assertValidImageSpec(spec);
  return { target: disk.target, image: spec };
}

/** Two disks backed by the same image (e.g. shareable) need one snapshot, not two. */
function distinctImages(images: readonly ImageSpec[]): ImageSpec[] {
  const seen = new Map<string, ImageSpec>();
  for (const image of images)
    seen.set(`${image.pool}/${image.namespace ?? ""}/${image.image}`, image);
  return [...seen.values()];
}
