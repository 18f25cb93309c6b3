// Snapshots of an RBD group: one snapshot of all member images at one instant (Ceph quiesces
// every member, then snapshots them all). Much shorter than a snapshot per image, and atomic
// across images. Keyed by the caller's name, so retries are no-ops.
import { rbdCall, rbdJson } from "./call.ts";
import { isStorageError, StorageError } from "./errors.ts";
import type { RbdRunner } from "./runner.ts";
import { groupPath, groupSnapPath, type GroupSpec } from "./specs.ts";

export interface GroupSnapshot {
  readonly name: string;
  /** `ok`, or `incomplete` when a create was interrupted half way. */
  readonly state: string;
}

/**
 * Creates `group@name`. Already existing and complete means a previous attempt landed: no-op. An
 * `incomplete` one (an interrupted create) is removed and made again, since a half snapshot is
 * not consistent. Returns whether this call created it.
 */
export async function createGroupSnapshot(
  runner: RbdRunner,
  group: GroupSpec,
  name: string,
): Promise<boolean> {
  const spec = groupSnapPath(group, name);
  const where = { pool: group.pool, namespace: group.namespace, group: group.group };
  for (let attempt = 0; ; attempt++) {
    try {
      await rbdCall(runner, ["group", "snap", "create", spec], { where });
      return true;
    } catch (err) {
      if (!isStorageError(err, "AlreadyExists")) throw err;
      const existing = (await listGroupSnapshots(runner, group)).find((s) => s.name === name);
      if (existing?.state === "ok") return false;
      if (attempt > 0) {
        throw new StorageError(
          "Unknown",
          `group snapshot ${spec} exists in state ${existing?.state ?? "(gone)"} after a retry`,
          err.details,
        );
      }
      await removeGroupSnapshot(runner, group, name);
    }
  }
}

/** The group's snapshots; `[]` when the group does not exist (that is what the CLI answers). */
export async function listGroupSnapshots(
  runner: RbdRunner,
  group: GroupSpec,
): Promise<GroupSnapshot[]> {
  const where = { pool: group.pool, namespace: group.namespace };
  const snaps = await rbdJson<{ snapshot: string; state: string }[]>(
    runner,
    ["group", "snap", "ls", groupPath(group)],
    { where },
  );
  return snaps.map((s) => ({ name: s.snapshot, state: s.state }));
}

/**
 * Removes `group@name` with the member snapshot on every image it was taken of (also images that
 * left the group since). Succeeds when the snapshot or the group is already gone.
 */
export async function removeGroupSnapshot(
  runner: RbdRunner,
  group: GroupSpec,
  name: string,
): Promise<void> {
  const spec = groupSnapPath(group, name);
  const where = snapshotWhere(group, name);
  try {
    await rbdCall(runner, ["group", "snap", "rm", spec], { where });
  } catch (err) {
    if (isStorageError(err, "SnapshotNotFound", "GroupNotFound")) return;
    throw err;
  }
}

/** Reverts every image of the snapshot to it. Whoever has the images open must close them first. */
export async function rollbackGroupSnapshot(
  runner: RbdRunner,
  group: GroupSpec,
  name: string,
): Promise<void> {
  const spec = groupSnapPath(group, name);
  const where = snapshotWhere(group, name);
  await rbdCall(runner, ["group", "snap", "rollback", "--no-progress", spec], { where });
}

/** What an error about `group@name` names, for the typed error's context. */
function snapshotWhere(group: GroupSpec, name: string) {
  return { pool: group.pool, namespace: group.namespace, group: group.group, snapshot: name };
}
