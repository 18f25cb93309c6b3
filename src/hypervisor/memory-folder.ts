// The memory folder made private at start: memory images hold everything a guest had in RAM
// (keys included), and the folder is a hostPath the kubelet creates 0755 — mkdir's mode does not
// apply to a folder that already exists. So the agent makes it 0700 itself before any snapshot,
// and refuses to start on a folder it cannot make private (a symlink, another owner).
import { chmod, lstat, mkdir } from "node:fs/promises";

export const MEMORY_FOLDER_MODE = 0o700;

export interface PrivateFolder {
  readonly path: string;
  /** The permission bits found, before any change (undefined when the folder was created). */
  readonly previousMode: number | undefined;
  readonly changed: boolean;
}

/**
 * Creates `path` 0700 if missing, else narrows an existing folder to 0700. Throws when it is
 * not a real folder owned by this process's user.
 *
 * @example
 * const folder = await makePrivateFolder(config.memoryDir);
 * if (folder.changed) log.info("memory folder made private", { mode: folder.previousMode?.toString(8) });
 */
export async function makePrivateFolder(path: string): Promise<PrivateFolder> {
  const created = (await mkdir(path, { recursive: true, mode: MEMORY_FOLDER_MODE })) !== undefined;
  const stats = await lstat(path);
  if (!stats.isDirectory())
    throw new Error(
      `memory folder ${path} is not a folder (a symlink or a file): refusing to use it`,
    );
  const uid = process.getuid?.();
  if (uid !== undefined && stats.uid !== uid)
    throw new Error(
      `memory folder ${path} belongs to uid ${stats.uid}, not to this agent (uid ${uid}): ` +
        `another user could read memory images there`,
    );
  const mode = stats.mode & 0o777;
  if (mode === MEMORY_FOLDER_MODE)
    return { path, previousMode: created ? undefined : mode, changed: false };
  await chmod(path, MEMORY_FOLDER_MODE);
  return { path, previousMode: created ? undefined : mode, changed: true };
}
