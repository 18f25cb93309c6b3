// Pure: what a VMSnapshot's status says about an RBD disk snapshot, read back into specs. The
// snapshot backend records each disk as `source` = `pool[/ns]/image` and `snapshot` =
// `pool[/ns]/<image or group>@name`; an image snapshot names the disk's own image, a group
// snapshot names the domain's group (see backend.ts). A restore needs to know which, because
// Ceph rolls a group back as one and hides a group snapshot's member from `image@name`.
import type { DiskSnapshotHandle } from "../backend.ts";
import { StorageError } from "./errors.ts";
import { assertValidName } from "./names.ts";
import { imagePath, type GroupSpec, type ImageSpec } from "./specs.ts";

export type RbdSnapshotRef =
  | {
      readonly kind: "image";
      readonly target: string;
      readonly image: ImageSpec;
      readonly name: string;
    }
  | {
      readonly kind: "group";
      readonly target: string;
      readonly image: ImageSpec;
      readonly group: GroupSpec;
      readonly name: string;
    };

/**
 * Reads an `rbd` handle from a VMSnapshot's status. Throws StorageError(InvalidName) for a
 * handle that is not one the RBD backend writes.
 *
 * @example snapshotRefOf({ target: "vdb", backend: "rbd", source: "rbd/web", snapshot: "rbd/vmsnap-web@vmsnap-1" })
 *          // { kind: "group", image: {pool:"rbd",image:"web"}, group: {pool:"rbd",group:"vmsnap-web"}, name: "vmsnap-1", ... }
 */
export function snapshotRefOf(handle: DiskSnapshotHandle): RbdSnapshotRef {
  if (handle.backend !== "rbd")
    throw new StorageError(
      "InvalidName",
      `disk ${handle.target} is not an RBD snapshot (${handle.backend})`,
    );
  const image = parseImagePath(handle.source, `source of ${handle.target}`);
  const at = handle.snapshot.lastIndexOf("@");
  if (at <= 0)
    throw new StorageError(
      "InvalidName",
      `snapshot of ${handle.target} has no @: ${JSON.stringify(handle.snapshot)}`,
    );
  const name = handle.snapshot.slice(at + 1);
  assertValidName("snapshot", name);
  const owner = parseImagePath(handle.snapshot.slice(0, at), `snapshot of ${handle.target}`);
  if (imagePath(owner) === imagePath(image))
    return { kind: "image", target: handle.target, image, name };
  const group: GroupSpec = {
    pool: owner.pool,
    group: owner.image,
    ...(owner.namespace ? { namespace: owner.namespace } : {}),
  };
  return { kind: "group", target: handle.target, image, group, name };
}

/** `pool/image` or `pool/namespace/image`, every part a valid name. */
export function parseImagePath(path: string, what: string): ImageSpec {
  const parts = path.split("/");
  if (parts.length < 2 || parts.length > 3)
    throw new StorageError(
      "InvalidName",
      `${what} is not pool[/namespace]/name: ${JSON.stringify(path)}`,
    );
  const [pool, middle, last] = parts as [string, string, string | undefined];
  const spec: ImageSpec =
    last === undefined ? { pool, image: middle } : { pool, namespace: middle, image: last };
  imagePath(spec); // validates every name
  return spec;
}
