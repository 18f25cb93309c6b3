// The names and paths vmsnap hands to libvirt snapshot calls, checked before any call is made.
// Snapshot names come from the controller (derived from a Kubernetes UID, e.g. `vmsnap-<uid>`)
// and end up in libvirt metadata, in file names (`<disk>.<name>.qcow2`) and in `domain@name`
// handles, so they are held to a strict pattern: no dots (the separator in those file names),
// no slashes, nothing that could be read as an option or a path. Paths must be absolute and free
// of control characters, which XML would normalise into a different file name.
import { isAbsolute } from "node:path";
import { HypervisorError, type Operation } from "./errors.ts";

/** Letters, digits, `-` and `_`; first a letter or digit; at most 100 characters. */
export const SNAPSHOT_NAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9_-]{0,99}$/;

/** Why `name` is not an acceptable snapshot name, or undefined when it is. */
export function snapshotNameProblem(name: string): string | undefined {
  if (typeof name !== "string" || name === "") return "snapshot name is empty";
  if (!SNAPSHOT_NAME_PATTERN.test(name))
    return `snapshot name ${JSON.stringify(name)} must match ${SNAPSHOT_NAME_PATTERN.source}`;
  return undefined;
}

/** Why `path` is not an acceptable file path for libvirt, or undefined when it is. */
export function filePathProblem(what: string, path: string): string | undefined {
  if (typeof path !== "string" || path === "") return `${what} is empty`;
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\u007f]/.test(path))
    return `${what} ${JSON.stringify(path)} contains a newline or another control character`;
  if (!isAbsolute(path)) return `${what} ${JSON.stringify(path)} is not an absolute path`;
  return undefined;
}

/** Throws HypervisorError(InvalidArgument) for the first problem found, before libvirt is asked. */
export function assertValid(
  operation: Operation,
  domain: string,
  problems: ReadonlyArray<string | undefined>,
): void {
  const problem = problems.find((p) => p !== undefined);
  if (problem === undefined) return;
  throw new HypervisorError(`${operation}(${domain}): ${problem}`, {
    reason: "InvalidArgument",
    operation,
    target: domain,
  });
}
