// Validation of every name that reaches the `rbd` command line, done before any process starts.
// Ceph itself accepts almost any byte in a name, but we pass names as arguments and build specs
// like `pool/ns/image@snap`, so a name must never contain a separator, look like an option, hide
// among Ceph's reserved dot-names, or carry anything a shell or a log reader would misread.
import { createHash } from "node:crypto";
import { StorageError } from "./errors.ts";

export type NameKind = "pool" | "namespace" | "image" | "snapshot" | "group";

/** Longest name accepted; real-world pool/image/snapshot names are far shorter. */
export const MAX_NAME_LENGTH = 128;

// Letters, digits and `_ . + : = -`; the first character must be a letter, digit or `_`, so a
// name is never taken for an option (`-x`) nor for one of Ceph's hidden names (`.group.*`).
const SAFE_NAME = /^[A-Za-z0-9_][A-Za-z0-9_.+:=-]*$/;

/** Why `value` is not an acceptable `kind` name, or undefined when it is. */
export function nameProblem(kind: NameKind, value: string): string | undefined {
  if (typeof value !== "string" || value.length === 0) return `${kind} name is empty`;
  if (value.length > MAX_NAME_LENGTH)
    return `${kind} name is longer than ${MAX_NAME_LENGTH} characters`;
  if (!SAFE_NAME.test(value)) {
    const bad = [...value].find(
      (c, i) => !/[A-Za-z0-9_.+:=-]/.test(c) || (i === 0 && !/[A-Za-z0-9_]/.test(c)),
    );
    return `${kind} name ${JSON.stringify(value)} contains ${JSON.stringify(bad)}; allowed are letters, digits and _.+:=- (not first)`;
  }
  return undefined;
}

/** Throws `StorageError(InvalidName)` unless `value` is a safe `kind` name. */
export function assertValidName(kind: NameKind, value: string): void {
  const problem = nameProblem(kind, value);
  if (problem) throw new StorageError("InvalidName", problem);
}

const GROUP_PREFIX = "vmsnap-";
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/**
 * The RBD group that holds a domain's images, keyed by the domain's UUID: two hosts may each
 * have a domain of the same name on one pool, and a group named after the name would be shared
 * by both, each rewriting the other's membership before its snapshot. A UUID is the domain's
 * identity, pinned at the snapshot's first look-up (status.domainUUID).
 *
 * @example groupNameForDomainUUID("6695eb01-f6a4-8304-79aa-97f2502e193f") // "vmsnap-6695eb01-f6a4-…"
 */
export function groupNameForDomainUUID(uuid: string): string {
  const canonical = uuid.toLowerCase();
  if (!UUID.test(canonical))
    throw new StorageError("InvalidName", `domain UUID ${JSON.stringify(uuid)} is not a UUID`);
  return GROUP_PREFIX + canonical;
}

/**
 * The group name releases before the UUID-keyed groups used: the domain's name. Snapshots taken
 * then record this group in their handles, and are removed and restored by what they record;
 * the name is computed only to recognise an image still in such a group, which is then moved to
 * the domain's UUID group (its old snapshots stay in the old group, see groups.ts). Unsafe
 * characters became `_`, and a hash of the original was appended whenever that (or truncation)
 * changed the name.
 *
 * @example legacyGroupNameForDomain("web-1")      // "vmsnap-web-1"
 * @example legacyGroupNameForDomain("db (prod)")  // "vmsnap-db__prod_-1d2c…" (10 hex digits)
 */
export function legacyGroupNameForDomain(domain: string): string {
  if (domain.length === 0) throw new StorageError("InvalidName", "domain name is empty");
  const sanitized = domain.replace(/[^A-Za-z0-9_.+:=-]/g, "_");
  const plain = GROUP_PREFIX + sanitized;
  if (sanitized === domain && plain.length <= MAX_NAME_LENGTH) return plain;
  const hash = createHash("sha256").update(domain, "utf8").digest("hex").slice(0, 10);
  return `${plain.slice(0, MAX_NAME_LENGTH - hash.length - 1)}-${hash}`;
}
