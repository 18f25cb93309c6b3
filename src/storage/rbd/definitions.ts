// A snapshot's domain definition kept in Ceph, as image metadata (`rbd image-meta`) of one of
// its images: every node that can read the disks can read it too, so a restore to a new domain
// on another node defines the VM as it was — not from a source domain that node does not have.
//
// The image is the one of the handle the registry picks (src/storage/registry.ts).
//
// The value is the XML itself on the command line (the CLI takes no file for it). It holds the
// domain's secrets (graphics passwords), so it is never put into an error message or a log:
// failures name the key and the size only. One argument may hold at most 128 KiB (Linux's
// MAX_ARG_STRLEN); a definition beyond that is refused with that reason.
import type { DiskSnapshotHandle } from "../backend.ts";
import { mapRbdFailure } from "./error-map.ts";
import { isStorageError, StorageError } from "./errors.ts";
import type { RbdResult, RbdRunner } from "./runner.ts";
import { parseImagePath } from "./snapshot-ref.ts";
import { imagePath } from "./specs.ts";

/** Linux's MAX_ARG_STRLEN (32 pages): the longest single argument execve takes. */
const MAX_ARGUMENT_BYTES = 128 * 1024;

/** The metadata key of snapshot `name`'s definition. */
export function definitionKey(name: string): string {
  return `vmsnap.definition.${name}`;
}

/** `pool[/namespace]/image` of the disk `handle` records: the image that keeps the definition. */
export function definitionImage(handle: DiskSnapshotHandle): string {
  return imagePath(parseImagePath(handle.source, handle.target));
}

/** Keeps `xml` as the definition of snapshot `name`; returns `pool/image` and the key. */
export async function storeDefinition(
  runner: RbdRunner,
  name: string,
  handle: DiskSnapshotHandle,
  xml: string,
): Promise<string> {
  const image = definitionImage(handle);
  const key = definitionKey(name);
  const bytes = Buffer.byteLength(xml);
  const described = `<domain definition, ${bytes} bytes>`;
  if (bytes >= MAX_ARGUMENT_BYTES) {
    throw new StorageError(
      "Unknown",
      `the domain definition of ${name} is ${bytes} bytes; rbd image-meta takes at most ${MAX_ARGUMENT_BYTES - 1}`,
    );
  }
  const shown = ["image-meta", "set", image, key, described];
  const result = await redacted(
    () => runner(["image-meta", "set", image, key, xml]),
    xml,
    described,
  );
  if (result.exitCode !== 0) throw mapRbdFailure(shown, result);
  return `${image} image-meta ${key}`;
}

/** The definition kept for snapshot `name`; undefined when the key (or its image) is not there. */
export async function readDefinition(
  runner: RbdRunner,
  name: string,
  handle: DiskSnapshotHandle,
): Promise<string | undefined> {
  const args = ["image-meta", "get", definitionImage(handle), definitionKey(name)];
  const result = await runner(args);
  if (result.exitCode === 2) return undefined;
  if (result.exitCode !== 0) throw mapRbdFailure(args, result);
  // The CLI prints the value and one newline.
  return result.stdout.endsWith("\n") ? result.stdout.slice(0, -1) : result.stdout;
}

/** Removes snapshot `name`'s definition; nothing to do when it (or its image) is gone. */
export async function removeDefinition(
  runner: RbdRunner,
  name: string,
  handle: DiskSnapshotHandle,
): Promise<void> {
  const args = ["image-meta", "remove", definitionImage(handle), definitionKey(name)];
  const result = await runner(args);
  if (result.exitCode === 0 || result.exitCode === 2) return;
  throw mapRbdFailure(args, result);
}

/** Runs `call`; a rejection's message and command never carry `secret`. */
async function redacted(
  call: () => Promise<RbdResult>,
  secret: string,
  shownAs: string,
): Promise<RbdResult> {
  try {
    return await call();
  } catch (err) {
    if (!isStorageError(err)) throw err;
    throw new StorageError(err.reason, err.message.split(secret).join(shownAs), {
      ...err.details,
      ...(err.details.command
        ? { command: err.details.command.map((a) => (a === secret ? shownAs : a)) }
        : {}),
    });
  }
}
