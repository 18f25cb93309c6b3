// Per-domain RBD groups: created on demand, their membership made equal to the domain's RBD
// images before each group snapshot, and removed once no snapshot needs them. An image can be
// in one group only; finding it in someone else's group is an error we report, never repair —
// except the group an older release of vmsnap named after this very domain, whose images are
// moved over (measured on Ceph 16: the old group's snapshots keep their member snapshots, and
// still roll back and are removed by their group, after the images left it).
import { rbdCall, rbdJson } from "./call.ts";
import { isStorageError, StorageError } from "./errors.ts";
import type { RbdRunner } from "./runner.ts";
import {
  groupPath,
  imagePath,
  poolPath,
  sameNamespace,
  type GroupSpec,
  type ImageSpec,
} from "./specs.ts";

interface CliGroupImage {
  image: string;
  pool: string;
  namespace: string;
}

/** Creates the group unless it exists. */
export async function ensureGroup(runner: RbdRunner, group: GroupSpec): Promise<void> {
  try {
    await rbdCall(runner, ["group", "create", groupPath(group)], {
      where: { pool: group.pool, namespace: group.namespace },
    });
  } catch (err) {
    if (!isStorageError(err, "AlreadyExists")) throw err;
  }
}

/** Whether the group exists (`group image list` of a missing group answers `[]`, so ask `group ls`). */
export async function groupExists(runner: RbdRunner, group: GroupSpec): Promise<boolean> {
  const where = { pool: group.pool, namespace: group.namespace };
  const names = await rbdJson<string[]>(
    runner,
    ["group", "ls", poolPath(group.pool, group.namespace)],
    { where },
  );
  return names.includes(group.group);
}

/** The group's member images; `[]` for a missing group. */
export async function listGroupImages(runner: RbdRunner, group: GroupSpec): Promise<ImageSpec[]> {
  const where = { pool: group.pool, namespace: group.namespace };
  const members = await rbdJson<CliGroupImage[]>(
    runner,
    ["group", "image", "list", groupPath(group)],
    { where },
  );
  return members.map((m) => ({
    pool: m.pool,
    image: m.image,
    ...(m.namespace ? { namespace: m.namespace } : {}),
  }));
}

/** The group an image belongs to (`pool[/ns]/group`), if any. */
export async function groupOfImage(
  runner: RbdRunner,
  image: ImageSpec,
): Promise<string | undefined> {
  const info = await rbdJson<{ group?: string }>(runner, ["info", imagePath(image)], {
    where: { ...image },
  });
  return info.group || undefined;
}

/**
 * Adds `image` to `group`; already a member is fine, a member of another group is
 * `AlreadyInGroup` — unless that group is `adoptFrom`, which the image is taken out of first.
 */
export async function addImageToGroup(
  runner: RbdRunner,
  group: GroupSpec,
  image: ImageSpec,
  adoptFrom?: GroupSpec,
): Promise<void> {
  try {
    // EINVAL: Ceph requires the group and its images to share one RADOS namespace.
    await rbdCall(runner, ["group", "image", "add", groupPath(group), imagePath(image)], {
      where: { ...image },
      overrides: { 22: "UnsupportedLayout" },
    });
  } catch (err) {
    if (!isStorageError(err, "AlreadyExists")) throw err;
    const current = await groupOfImage(runner, image);
    if (current === groupPath(group)) return;
    if (adoptFrom !== undefined && current === groupPath(adoptFrom)) {
      await removeImageFromGroup(runner, adoptFrom, image);
      return addImageToGroup(runner, group, image);
    }
    throw new StorageError(
      "AlreadyInGroup",
      `image ${imagePath(image)} belongs to RBD group ${current ?? "(unknown)"}, not ${groupPath(group)}; ` +
        `an image can be in one group only — remove it from that group or exclude the disk`,
      err.details,
    );
  }
}

/** Removes `image` from `group`; not a member, or image or group gone, is fine. */
export async function removeImageFromGroup(
  runner: RbdRunner,
  group: GroupSpec,
  image: ImageSpec,
): Promise<void> {
  try {
    await rbdCall(runner, ["group", "image", "remove", groupPath(group), imagePath(image)]);
  } catch (err) {
    // Every ENOENT (image, group, membership, even the image's pool) means "not a member".
    if (!isStorageError(err) || err.details.exitCode !== 2) throw err;
  }
}

const sameImage = (a: ImageSpec, b: ImageSpec) =>
  a.pool === b.pool && a.image === b.image && sameNamespace(a.namespace, b.namespace);

/** What `current` members lack of `wanted`, and what they hold beyond it. */
export function membershipDifference(
  current: readonly ImageSpec[],
  wanted: readonly ImageSpec[],
): { missing: ImageSpec[]; extra: ImageSpec[] } {
  return {
    missing: wanted.filter((want) => !current.some((have) => sameImage(have, want))),
    extra: current.filter((have) => !wanted.some((want) => sameImage(have, want))),
  };
}

/**
 * Makes the group's membership exactly `images`: a disk detached from the domain must not be
 * rolled back with it later, a new disk must be in the next snapshot. Existing group snapshots
 * keep the images they were taken of, so this never changes what an older snapshot holds.
 */
export async function syncGroupMembers(
  runner: RbdRunner,
  group: GroupSpec,
  images: readonly ImageSpec[],
  /** The members when the caller just listed them, to save a call. */
  known?: readonly ImageSpec[],
  /** A group of ours the images may still be in (addImageToGroup's adoptFrom). */
  adoptFrom?: GroupSpec,
): Promise<{ added: ImageSpec[]; removed: ImageSpec[] }> {
  const current = known ?? (await listGroupImages(runner, group));
  const { missing: added, extra: removed } = membershipDifference(current, images);
  for (const image of added) await addImageToGroup(runner, group, image, adoptFrom);
  for (const image of removed) await removeImageFromGroup(runner, group, image);
  return { added, removed };
}

/**
 * Removes the group when it holds no snapshot any more, releasing its images so they can join
 * another group later. `group rm` would also delete remaining group snapshots, so it is only
 * issued after seeing none; callers serialise operations per domain (one snapshot operation
 * at a time), so none can appear in between.
 */
export async function removeGroupIfUnused(runner: RbdRunner, group: GroupSpec): Promise<boolean> {
  const where = { pool: group.pool, namespace: group.namespace };
  const snaps = await rbdJson<unknown[]>(runner, ["group", "snap", "ls", groupPath(group)], {
    where,
  });
  if (snaps.length > 0) return false;
  if (!(await groupExists(runner, group))) return false;
  await rbdCall(runner, ["group", "rm", groupPath(group)], { where });
  return true;
}
