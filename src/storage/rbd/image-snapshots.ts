// Snapshots of one RBD image: create, list, remove, rollback. Creation is keyed by the name
// the caller derives from the VMSnapshot UID, so every operation can simply be retried: EEXIST
// on create and ENOENT on remove mean the work is already done.
import { rbdCall, rbdJson } from "./call.ts";
import { isStorageError } from "./errors.ts";
import type { RbdRunner } from "./runner.ts";
import { imagePath, imageSnapPath, type ImageSpec } from "./specs.ts";

export interface ImageSnapshot {
  readonly id: number;
  readonly name: string;
  readonly size: number;
  readonly protected: boolean;
  readonly timestamp: string;
}

interface CliSnapshot {
  id: number;
  name: string;
  size: number;
  protected: string;
  timestamp: string;
}

/**
 * Creates `image@name`. Already existing means a previous attempt landed (maybe one that timed
 * out with unknown outcome): a no-op. Returns whether this call created it.
 */
export async function createImageSnapshot(
  runner: RbdRunner,
  image: ImageSpec,
  name: string,
): Promise<boolean> {
  const spec = imageSnapPath(image, name);
  try {
    await rbdCall(runner, ["snap", "create", "--no-progress", spec], { where: { ...image } });
    return true;
  } catch (err) {
    if (isStorageError(err, "AlreadyExists")) return false;
    throw err;
  }
}

/** The image's own snapshots (not the hidden members of group snapshots). */
export async function listImageSnapshots(
  runner: RbdRunner,
  image: ImageSpec,
): Promise<ImageSnapshot[]> {
  const snaps = await rbdJson<CliSnapshot[]>(runner, ["snap", "ls", imagePath(image)], {
    where: { ...image },
  });
  return snaps.map((s) => ({
    id: s.id,
    name: s.name,
    size: s.size,
    protected: s.protected === "true",
    timestamp: s.timestamp,
  }));
}

/**
 * Removes `image@name`; succeeds when the snapshot or the whole image is already gone (an image
 * cannot be removed while it has snapshots, so its snapshots went first). A missing pool is an
 * error: more likely a wrong configuration than a completed removal.
 */
export async function removeImageSnapshot(
  runner: RbdRunner,
  image: ImageSpec,
  name: string,
): Promise<void> {
  const spec = imageSnapPath(image, name);
  try {
    // EBUSY here means the snapshot is protected (it has clones).
    await rbdCall(runner, ["snap", "rm", "--no-progress", spec], {
      where: { ...image, snapshot: name },
      overrides: { 16: "Protected" },
    });
  } catch (err) {
    if (isStorageError(err, "SnapshotNotFound", "ImageNotFound")) return;
    throw err;
  }
}

/** Reverts the image's data to `image@name`. Whoever has the image open must close it first. */
export async function rollbackImageSnapshot(
  runner: RbdRunner,
  image: ImageSpec,
  name: string,
): Promise<void> {
  const spec = imageSnapPath(image, name);
  await rbdCall(runner, ["snap", "rollback", "--no-progress", spec], {
    where: { ...image, snapshot: name },
  });
}
