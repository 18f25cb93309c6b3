// How many bytes a folder's filesystem has free for us: statfs's blocks available to
// unprivileged users (bavail), not bfree — the root-reserved blocks are the host's last resort,
// not room for memory images, even though the agent runs as root.
import { statfs } from "node:fs/promises";

export type FreeSpacePort = (folder: string) => Promise<number>;

export const freeBytes: FreeSpacePort = async (folder) => {
  const stats = await statfs(folder);
  return stats.bavail * stats.bsize;
};
