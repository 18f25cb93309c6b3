// Typed reasons, end to end: a libvirt code or Ceph errno becomes one of these, which becomes
// status.error.reason, a condition reason, an Event reason and a metric label.

/** Why a snapshot failed (status.error.reason, the Failed condition's reason). */
export const FailureReason = {
  DomainNotFound: "DomainNotFound",
  DomainNotRunning: "DomainNotRunning",
  GuestAgentUnavailable: "GuestAgentUnavailable",
  QuiesceFailed: "QuiesceFailed",
  FreezeTimeout: "FreezeTimeout",
  StorageError: "StorageError",
  StorageTimeout: "StorageTimeout",
  UnsupportedDisk: "UnsupportedDisk",
  /** spec.memoryMode Live on an agent that cannot drive QEMU's background snapshot. */
  UnsupportedMemoryMode: "UnsupportedMemoryMode",
  MemorySnapshotOfOfflineDomain: "MemorySnapshotOfOfflineDomain",
  HypervisorError: "HypervisorError",
  /**
   * A call's deadline passed while the controller itself was not running (stopped, a long GC
   * pause, starved of CPU) and no answer came once it ran again: look at the controller's
   * process and node, not at libvirt.
   */
  ControllerStalled: "ControllerStalled",
  DeadlineExceeded: "DeadlineExceeded",
  Interrupted: "Interrupted",
  InvalidSpec: "InvalidSpec",
  /** The namespace does not own the domain (or it does not exist: the same answer, on purpose). */
  Forbidden: "Forbidden",
  /** The memory folder has less free space than the guest's RAM plus the reserve. */
  InsufficientSpace: "InsufficientSpace",
  Internal: "Internal",
} as const;
export type FailureReason = (typeof FailureReason)[keyof typeof FailureReason];

/** Why a snapshot was taken without a freeze; status says so, it is never silent. */
export const UnquiescedReason = {
  NoGuestAgent: "NoGuestAgent",
  FreezeFailed: "FreezeFailed",
  QuiesceDisabled: "QuiesceDisabled",
  DomainPaused: "DomainPaused",
  DomainOffline: "DomainOffline",
} as const;
export type UnquiescedReason = (typeof UnquiescedReason)[keyof typeof UnquiescedReason];

/** The `Thawed` condition's reason when, after a freeze, no thaw could be confirmed. */
export const ThawUnconfirmedReason = "ThawUnconfirmed";

/** Reasons the snapshot waits without failing (Reconciling condition, Events). */
export const WaitReason = {
  WaitingForDomainLock: "WaitingForDomainLock",
  WaitingForFreezeSlot: "WaitingForFreezeSlot",
  /** The namespace has its cap of snapshots in flight on this node (limits/namespace-cap.ts). */
  WaitingForNamespaceSlot: "WaitingForNamespaceSlot",
  ShuttingDown: "ShuttingDown",
  WaitingForThawGuard: "WaitingForThawGuard",
} as const;
export type WaitReason = (typeof WaitReason)[keyof typeof WaitReason];
