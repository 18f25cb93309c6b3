// A snapshot's domain definition kept as a file beside its disks: `<name>.definition.xml` in the
// folder of the disk the registry picks (src/storage/registry.ts). File disks are this node's (a
// restore of them never runs on another node), and so is the file.
//
// Mode 0600: the XML holds the domain's secrets (graphics passwords), like the disks beside it.
// Written to a temporary name and renamed, so a reader never sees half a definition.
import { readFile, rename, rm, writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import type { DiskSnapshotHandle } from "../backend.ts";

/** The file that keeps snapshot `name`'s definition, beside the disk `handle` records. */
export function definitionFile(name: string, handle: DiskSnapshotHandle): string {
  return join(dirname(handle.source), `${name}.definition.xml`);
}

export async function storeDefinitionFile(
  name: string,
  handle: DiskSnapshotHandle,
  xml: string,
): Promise<string> {
  const file = definitionFile(name, handle);
  const partial = `${file}.partial`;
  await writeFile(partial, xml, { mode: 0o600 });
  await rename(partial, file);
  return file;
}

export async function readDefinitionFile(
  name: string,
  handle: DiskSnapshotHandle,
): Promise<string | undefined> {
  try {
    return await readFile(definitionFile(name, handle), "utf8");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw err;
  }
}

export async function removeDefinitionFile(
  name: string,
  handle: DiskSnapshotHandle,
): Promise<void> {
  const file = definitionFile(name, handle);
  await rm(file, { force: true });
  await rm(`${file}.partial`, { force: true });
}
