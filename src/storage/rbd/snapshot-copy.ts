// Restore of RBD disks from a VMSnapshot: in place by rolling the snapshot back, or into new
// images for a new domain by copying the snapshot's data, leaving the source images untouched
// (the source VM may keep running on them).
//
// Why a copy through librbd and not `rbd clone`: on Ceph 16 (measured, docs/restore-facts.md)
// a group snapshot's per-image snapshots live in the image's group snapshot namespace, and the
// CLI cannot clone, export, deep-copy, rename or protect them (ENOENT); `rbd deep cp` of the
// image does not carry them either. librbd reads them by snapshot id (native/src/rbd-copy.cc).
//
// Crash safety: the copy goes to `<dest>.partial` and is renamed to `<dest>` only when complete,
// so an image named `<dest>` is always a whole copy; its `vmsnap.copied-from` metadata says of
// what. A retry finds either the finished `<dest>` (no-op), or a partial copy it removes and
// starts again. An image called `<dest>` that is not our copy is never touched: AlreadyExists.
import { rbdCall, rbdJson } from "./call.ts";
import { opTimeoutSeconds, type RbdConfig } from "./config.ts";
import { isStorageError, StorageError } from "./errors.ts";
import { rollbackGroupSnapshot } from "./group-snapshots.ts";
import { rollbackImageSnapshot } from "./image-snapshots.ts";
import { assertValidName } from "./names.ts";
import { loadNativeRbd, type NativeCopyError, type NativeRbd } from "./native-copy.ts";
import type { RbdRunner } from "./runner.ts";
import type { RbdSnapshotRef } from "./snapshot-ref.ts";
import { groupSnapPath, imagePath, imageSnapPath, type ImageSpec } from "./specs.ts";

/** Image metadata key naming the snapshot a restored image was copied from. */
export const COPIED_FROM_KEY = "vmsnap.copied-from";
const PARTIAL_SUFFIX = ".partial";

/**
 * Rolls every snapshot in `refs` back: one rollback per group snapshot (all its images at
 * once), one per image snapshot. Idempotent. Refuses with Busy, before rolling anything back,
 * when any image is open (has a watcher): measured on Ceph 16, `group snap rollback` does NOT
 * refuse an image another client has open and writes to (the exclusive lock is cooperative and
 * is handed over), so a running VM would have its disks changed under it.
 */
export async function revertRbdSnapshots(
  runner: RbdRunner,
  refs: readonly RbdSnapshotRef[],
): Promise<void> {
  const images = new Map(refs.map((r) => [imagePath(r.image), r.image]));
  for (const [path, image] of images) {
    const watchers = await imageWatchers(runner, image);
    if (watchers > 0)
      throw new StorageError(
        "Busy",
        `image ${path} is open by ${watchers} client(s); stop the domain before reverting its disks`,
      );
  }
  const done = new Set<string>();
  for (const ref of refs) {
    const key =
      ref.kind === "group"
        ? groupSnapPath(ref.group, ref.name)
        : imageSnapPath(ref.image, ref.name);
    if (done.has(key)) continue;
    done.add(key);
    if (ref.kind === "group") await rollbackGroupSnapshot(runner, ref.group, ref.name);
    else await rollbackImageSnapshot(runner, ref.image, ref.name);
  }
}

/** How many clients have `image` open (`rbd status`): a running QEMU is one. */
export async function imageWatchers(runner: RbdRunner, image: ImageSpec): Promise<number> {
  const status = await rbdJson<{ watchers?: unknown[] }>(runner, ["status", imagePath(image)], {
    where: { ...image },
  });
  return status.watchers?.length ?? 0;
}

interface CliSnapshot {
  id: number;
  name: string;
  namespace?: { type: string; pool?: string; group?: string; "group snap"?: string };
}

/**
 * The id of the snapshot `ref` names on its image: the user snapshot `name`, or the image's
 * member of group snapshot `group@name`. SnapshotNotFound when the image has none.
 */
export async function snapshotIdOf(runner: RbdRunner, ref: RbdSnapshotRef): Promise<number> {
  const snaps = await rbdJson<CliSnapshot[]>(
    runner,
    ["snap", "ls", "--all", imagePath(ref.image)],
    {
      where: { ...ref.image },
    },
  );
  const found = snaps.find((s) => {
    const type = s.namespace?.type ?? "user";
    if (ref.kind === "image") return type === "user" && s.name === ref.name;
    return (
      type === "group" &&
      s.namespace?.pool === ref.group.pool &&
      s.namespace.group === ref.group.group &&
      s.namespace["group snap"] === ref.name
    );
  });
  if (found === undefined) {
    const what =
      ref.kind === "group"
        ? groupSnapPath(ref.group, ref.name)
        : imageSnapPath(ref.image, ref.name);
    throw new StorageError(
      "SnapshotNotFound",
      `image ${imagePath(ref.image)} has no snapshot of ${what}`,
    );
  }
  return found.id;
}

export interface RbdCopyOutcome {
  readonly target: string;
  readonly image: ImageSpec;
  /** False when a previous attempt had already finished the copy. */
  readonly copied: boolean;
  readonly bytesCopied: number;
  readonly elapsedMs: number;
}

export interface CopyOptions {
  /** The librbd module; tests may pass their own. */
  readonly native?: NativeRbd;
}

/**
 * Copies the snapshot `ref` names into the new image `dest` (same size, features of the
 * source minus journaling/mirroring). Idempotent and crash-safe, see the header.
 */
export async function copyRbdSnapshot(
  runner: RbdRunner,
  config: RbdConfig,
  ref: RbdSnapshotRef,
  dest: ImageSpec,
  options: CopyOptions = {},
): Promise<RbdCopyOutcome> {
  const partial: ImageSpec = { ...dest, image: partialName(dest.image) };
  const marker = markerOf(ref);
  const existing = await copiedFrom(runner, dest);
  if (existing !== undefined) {
    if (existing === marker)
      return { target: ref.target, image: dest, copied: false, bytesCopied: 0, elapsedMs: 0 };
    throw new StorageError(
      "AlreadyExists",
      `image ${imagePath(dest)} exists and is not a copy of ${marker}${existing ? ` (it is of ${existing})` : ""}`,
    );
  }
  const snapId = await snapshotIdOf(runner, ref);
  await removeIfPresent(runner, partial);

  const native = options.native ?? loadNativeRbd();
  let result;
  try {
    result = await native.copySnapshot({
      confPath: config.confPath,
      clientId: config.clientId,
      keyringPath: config.keyringPath,
      opTimeoutSeconds: opTimeoutSeconds(config),
      pool: ref.image.pool,
      ...(ref.image.namespace ? { namespace: ref.image.namespace } : {}),
      image: ref.image.image,
      snapId,
      destPool: partial.pool,
      ...(partial.namespace ? { destNamespace: partial.namespace } : {}),
      destImage: partial.image,
      markerKey: COPIED_FROM_KEY,
      markerValue: marker,
    });
  } catch (err) {
    throw nativeFailure(err, ref, partial);
  }
  await rbdCall(runner, ["rename", imagePath(partial), imagePath(dest)], { where: { ...partial } });
  return {
    target: ref.target,
    image: dest,
    copied: true,
    bytesCopied: result.bytesCopied,
    elapsedMs: result.elapsedMs,
  };
}

/** Removes a restored image (e.g. of a failed new-domain restore); succeeds when it is gone. */
export async function removeRestoredImage(runner: RbdRunner, image: ImageSpec): Promise<void> {
  await removeIfPresent(runner, { ...image, image: partialName(image.image) });
  await removeIfPresent(runner, image);
}

/** What `vmsnap.copied-from` says of `image`: undefined when the image does not exist, "" when
 *  it exists without the key. */
async function copiedFrom(runner: RbdRunner, image: ImageSpec): Promise<string | undefined> {
  try {
    const stdout = await rbdCall(
      runner,
      ["image-meta", "list", "--format", "json", imagePath(image)],
      { where: { ...image } },
    );
    // An image without metadata prints nothing at all, not `{}`.
    const meta = stdout.trim() === "" ? {} : (JSON.parse(stdout) as Record<string, string>);
    return meta[COPIED_FROM_KEY] ?? "";
  } catch (err) {
    if (isStorageError(err, "ImageNotFound")) return undefined;
    throw err;
  }
}

async function removeIfPresent(runner: RbdRunner, image: ImageSpec): Promise<void> {
  try {
    await rbdCall(runner, ["rm", "--no-progress", imagePath(image)], { where: { ...image } });
  } catch (err) {
    if (!isStorageError(err, "ImageNotFound")) throw err;
  }
}

function partialName(image: string): string {
  const name = `${image}${PARTIAL_SUFFIX}`;
  assertValidName("image", name);
  return name;
}

/** `pool/image@snap` or `pool/group@snap`: what the copy is of, recorded on the new image. */
function markerOf(ref: RbdSnapshotRef): string {
  return ref.kind === "group"
    ? `${imagePath(ref.image)} in ${groupSnapPath(ref.group, ref.name)}`
    : imageSnapPath(ref.image, ref.name);
}

const BY_ERRNO: Readonly<Record<number, StorageError["reason"]>> = {
  1: "PermissionDenied",
  13: "PermissionDenied",
  16: "Busy",
  17: "AlreadyExists",
  110: "StorageTimeout",
};

function nativeFailure(err: unknown, ref: RbdSnapshotRef, dest: ImageSpec): StorageError {
  const e = err as Partial<NativeCopyError>;
  const errno = typeof e.errno === "number" ? e.errno : undefined;
  let reason = errno === undefined ? "Unknown" : (BY_ERRNO[errno] ?? "Unknown");
  if (errno === 2)
    reason = e.operation?.startsWith("set snapshot id") ? "SnapshotNotFound" : "ImageNotFound";
  return new StorageError(
    reason,
    `copy of ${imagePath(ref.image)}@${ref.name} to ${imagePath(dest)} failed: ${e.message ?? String(err)}`,
    errno === undefined ? {} : { errno },
  );
}
