// The one error type the RBD backend throws: a typed `reason` the controller maps to a
// condition and a metric label, never a message to be parsed again.

/** Why a storage operation failed. */
export type StorageErrorReason =
  /** The pool (or the RADOS namespace inside it) does not exist. */
  | "PoolNotFound"
  | "ImageNotFound"
  | "SnapshotNotFound"
  | "GroupNotFound"
  /** A name is taken by something that is not the artefact asked for. */
  | "AlreadyExists"
  /** The snapshot is protected (has clones) and cannot be removed. */
  | "Protected"
  /** The image has snapshots and cannot be removed. */
  | "HasSnapshots"
  /** The image is in use (e.g. its exclusive lock is held) and the operation needs it idle. */
  | "Busy"
  /** Ceph did not answer within the configured timeout; the outcome of a create is unknown. */
  | "StorageTimeout"
  /** cephx refused the client, or its caps do not allow the operation, or no usable keyring. */
  | "PermissionDenied"
  /** A name that would be unsafe or ambiguous on the command line; refused before running. */
  | "InvalidName"
  /** The image already belongs to a different RBD group than the domain's. */
  | "AlreadyInGroup"
  /**
   * The group's members differ from the images its snapshot was taken for: someone changed them
   * between prepare and create, so the group snapshot may hold another VM's images.
   */
  | "MembershipChanged"
  /** The disks cannot be snapshotted together (e.g. RBD namespaces differ); nothing was done. */
  | "UnsupportedLayout"
  | "Unknown";

export interface StorageErrorDetails {
  /** The `rbd` arguments that failed (without auth options), for logs. */
  readonly command?: readonly string[];
  /** Exit code of `rbd`, which is the errno of the failure (1 is also "bad option"). */
  readonly exitCode?: number;
  /** The errno printed on stderr as `(N)`, when there is one. */
  readonly errno?: number;
  readonly stderr?: string;
}

export class StorageError extends Error {
  override readonly name = "StorageError";
  readonly reason: StorageErrorReason;
  readonly details: StorageErrorDetails;

  constructor(reason: StorageErrorReason, message: string, details: StorageErrorDetails = {}) {
    super(message);
    this.reason = reason;
    this.details = details;
  }
}

/** True when `err` is a StorageError with one of `reasons`. */
export function isStorageError(
  err: unknown,
  ...reasons: StorageErrorReason[]
): err is StorageError {
  return err instanceof StorageError && (reasons.length === 0 || reasons.includes(err.reason));
}
