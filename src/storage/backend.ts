// The one interface a storage backend implements, whatever stores the disks. RBD disks are
// snapshotted by Ceph (one group snapshot for several images), file disks by libvirt. Every
// operation is idempotent and keyed by a name derived from the VMSnapshot UID, so a controller
// that crashed and retries an operation never creates a second artefact. The controller calls
// backends only through the registry (registry.ts), never by name.
import type { Disk } from "../hypervisor/disk.ts";

/** What a backend created for a set of disks; stored in status so deletion needs no lookup. */
export interface DiskSnapshotHandle {
  readonly target: string;
  /** The backend's `kind`: which backend removes (or restores) this snapshot. */
  readonly backend: string;
  /** The disk's source: `pool/image` (or `pool/namespace/image`), or the file path. */
  readonly source: string;
  /** The backend's own name of the snapshot: `pool/image@snap`, `pool/group@snap`, an overlay path. */
  readonly snapshot: string;
}

export interface SnapshotRequest {
  /** Libvirt domain the disks belong to. */
  readonly domain: string;
  /**
   * The domain's UUID as the snapshot pinned it at its first look-up. Backends that keep state
   * per domain (the RBD group) key it by this, never by the name another host may share.
   */
  readonly domainUUID?: string;
  /** Backend snapshot name, derived from the VMSnapshot UID; the idempotency key. */
  readonly name: string;
  /** The disks this backend must snapshot together, at one instant. */
  readonly disks: readonly Disk[];
}

/** Where a restored disk lives now, and how it got there (a VMRestore's `restoredDisks`). */
export interface RestoredDiskHandle {
  readonly target: string;
  readonly backend: string;
  /** The disk as the restored domain uses it: `pool[/namespace]/image` or a file path. */
  readonly source: string;
  /** The snapshot handle's `snapshot` it came from. */
  readonly from: string;
  /** Rollback (RBD in place), Overlay (a new qcow2 on the snapshot's file), Copy (new domain). */
  readonly method: "Rollback" | "Overlay" | "Copy";
}

export interface RestoreRequest {
  /** The restore's own name (from the VMRestore UID): the idempotency key of what it makes. */
  readonly name: string;
  /** The snapshot's recorded handles of this backend. */
  readonly handles: readonly DiskSnapshotHandle[];
}

/**
 * What to remove: the handles status recorded (removed by the names they record, whatever the
 * domain is now, and whichever naming made them), plus `disks` — the recorded disks and those
 * the attempt used — for what a create may have made that status did not record yet.
 */
export interface RemoveRequest extends SnapshotRequest {
  readonly recorded?: readonly DiskSnapshotHandle[];
}

/**
 * A snapshot's domain definition, kept with its disk snapshots: the inactive domain XML as it
 * was when the snapshot was taken, so a restore defines the VM as it was then — also after the
 * source domain was changed or undefined, and on another node when the disks are shared (RBD).
 */
export interface DefinitionRequest {
  /** The snapshot's backend name (from the VMSnapshot UID), as `create` was given. */
  readonly name: string;
  /** The recorded handle of the disk it is kept with (the registry picks it: the first of the
   *  snapshot's disks by target, of the first backend that keeps definitions). */
  readonly handle: DiskSnapshotHandle;
}

/** Where a snapshot's definition was kept: the backend's kind and its own words for where. */
export interface StoredDefinition {
  readonly backend: string;
  readonly location: string;
}

export interface StorageBackend {
  /** Matches the inventory's `disk.plan.backend` for the disks this backend snapshots. */
  readonly kind: string;
  /** Sets up, before the guest is frozen, what keeps the frozen window short (RBD groups). */
  prepare?(request: SnapshotRequest): Promise<void>;
  /** Creates one consistent snapshot of all `disks`; succeeds as a no-op when it already exists. */
  create(request: SnapshotRequest): Promise<DiskSnapshotHandle[]>;
  /** Removes what `create` made; succeeds when it is already gone. */
  remove(request: RemoveRequest): Promise<void>;
  /**
   * Checks, once the guest runs again, that what `create` made holds exactly the recorded disks
   * and nothing else (an RBD group another party re-membered between prepare and create would
   * hold another VM's images). Throws a StorageError when it does not; the caller fails the
   * snapshot, which removes it.
   */
  verify?(handles: readonly DiskSnapshotHandle[]): Promise<void>;
  /** The disk a recorded handle stands for: enough to find and remove its snapshot. */
  diskOf(handle: DiskSnapshotHandle): Disk;
  /** Reverts the disks to the snapshot (the domain must not be using them). */
  rollback(request: SnapshotRequest): Promise<void>;
  /**
   * A restore in place: the domain's disks brought back to the snapshot's content, the domain
   * stopped. Idempotent. Returns where each disk lives now (an RBD image is itself again; a file
   * disk gets a new overlay on the snapshot's file).
   */
  revert?(request: RestoreRequest): Promise<RestoredDiskHandle[]>;
  /**
   * A restore to a new domain: self-contained copies of the snapshot's disks named after
   * `newDomain`, the source left alone. Idempotent: a finished copy is kept, a partial one redone.
   */
  copy?(request: RestoreRequest & { readonly newDomain: string }): Promise<RestoredDiskHandle[]>;
  /**
   * Keeps `xml` with the snapshot (overwriting what an earlier attempt kept); returns where, in
   * words a person can use to find it. The XML holds secrets (DomainXmlFlags.Secure): it goes
   * only where the disks' own content is, readable by whoever can read the disks.
   */
  storeDefinition?(request: DefinitionRequest & { readonly xml: string }): Promise<string>;
  /** The definition `storeDefinition` kept for the snapshot; undefined when there is none. */
  readDefinition?(request: DefinitionRequest): Promise<string | undefined>;
  /** Removes the kept definition; succeeds when there is none. */
  removeDefinition?(request: DefinitionRequest): Promise<void>;
}
