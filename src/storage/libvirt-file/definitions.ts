// A snapshot's domain definition kept as a file beside its disks: `<name>.definition.xml` in the
// folder of the first disk (by target) of the snapshot. Chosen from the recorded handles alone,
// so store, read and remove agree without recording anything else. File disks are this node's
// (a restore of them never runs on another node), and so is the file.
//
// Mode 0600: the XML holds the domain's secrets (graphics passwords), like the disks beside it.
// Written to a temporary name and renamed, so a reader never sees half a definition.
import { readFile, rename, rm, writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import type { DiskSnapshotHandle } from "../backend.ts";

/** The file that keeps snapshot `name`'s definition; undefined without a file disk. */
export function definitionFile(
  name: string,
  handles: readonly DiskSnapshotHandle[],
): string | undefined {
  const first = [...handles].sort((a, b) => a.target.localeCompare(b.target))[0];
  return first === undefined ? undefined : join(dirname(first.source), `${name}.definition.xml`);
}

export async function storeDefinitionFile(
  name: string,
  handles: readonly DiskSnapshotHandle[],
  xml: string,
): Promise<string> {
  const file = definitionFile(name, handles);
  if (file === undefined) throw new Error("no file disk to keep a definition with");
  const partial = `${file}.partial`;
  await writeFile(partial, xml, { mode: 0o600 });
  await rename(partial, file);
  return file;
}

export async function readDefinitionFile(
  name: string,
  handles: readonly DiskSnapshotHandle[],
): Promise<string | undefined> {
  const file = definitionFile(name, handles);
  if (file === undefined) return undefined;
  try {
    return await readFile(file, "utf8");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw err;
  }
}

export async function removeDefinitionFile(
  name: string,
  handles: readonly DiskSnapshotHandle[],
): Promise<void> {
  const file = definitionFile(name, handles);
  if (file === undefined) return;
  await rm(file, { force: true });
  await rm(`${file}.partial`, { force: true });
}
