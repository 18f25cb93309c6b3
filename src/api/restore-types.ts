// The VMRestore resource as TypeScript types: what users write (spec), what the agent reports
// (status), and the typed reasons a restore fails with. crds/vmsnap.io_vmrestores.yaml is the
// schema the API server enforces.
import type { V1ObjectMeta } from "@kubernetes/client-node";
import type { ResourceDescriptor } from "../kube/resource.ts";
import { GROUP, VERSION, type Condition } from "./types.ts";

export const RESTORE_PLURAL = "vmrestores";
export const RESTORE_KIND = "VMRestore";

/** The VMRestore resource, for the informer, the object client and Events of src/kube. */
export const vmrestores: ResourceDescriptor = {
  group: GROUP,
  version: VERSION,
  plural: RESTORE_PLURAL,
  kind: RESTORE_KIND,
  namespaced: true,
};

/** Phases in order; a restore claims only those that happened (no memory: no MemoryRestored). */
export const RESTORE_PHASES = [
  "Pending",
  "TargetStopped",
  "DisksRestored",
  "MemoryRestored",
  "Resumed",
  "Thawed",
  "Succeeded",
  "Failed",
] as const;
export type RestorePhase = (typeof RESTORE_PHASES)[number];

export type RestoreTarget =
  | { inPlace: Record<string, never>; newDomain?: undefined }
  | { inPlace?: undefined; newDomain: { name: string; node?: string } };

export type MemoryPolicy = "Restore" | "Skip";
export type PowerState = "Running" | "Paused" | "Stopped";

export interface VMRestoreSpec {
  /** A Succeeded VMSnapshot in the same namespace. */
  snapshotName: string;
  target: RestoreTarget;
  memory?: MemoryPolicy;
  powerState?: PowerState;
  stopRunningTarget?: boolean;
  thawTimeout?: string;
  failureDeadline?: string;
}

/** How one disk came back: Rollback (RBD in place), Overlay (file in place), Copy (new domain). */
export type RestoreMethod = "Rollback" | "Copy" | "Overlay";

export interface RestoredDiskStatus {
  target: string;
  backend: "rbd" | "libvirt-file";
  /** The disk as the domain now uses it: pool/image or a file path. */
  source: string;
  /** The VMSnapshot's `disks[].snapshot` it came from. */
  from: string;
  method: RestoreMethod;
}

/** kstatus conditions only: a restore has no Quiesced of its own (see `consistency`). */
export type RestoreCondition = Omit<Condition, "type"> & {
  type: "Ready" | "Reconciling" | "Stalled";
};

export type Consistency = "ApplicationConsistent" | "CrashConsistent";

export type ThawedBy = "Agent" | "Guard";

export interface VMRestoreStatus {
  phase?: RestorePhase;
  observedGeneration?: number;
  conditions?: RestoreCondition[];
  node?: string;
  targetDomain?: string;
  targetUUID?: string;
  restoredDisks?: RestoredDiskStatus[];
  /** Decided when the restore starts: spec.memory is Restore and the snapshot has RAM. */
  restoresMemory?: boolean;
  memoryRestored?: boolean;
  consistency?: Consistency;
  startTime?: string;
  /** Written before the resume: a restarted agent thaws the guest by then (write-ahead). */
  thawDeadline?: string;
  resumedAt?: string;
  thawedAt?: string;
  resumeToThawMs?: number;
  /** Filesystems the thaw after the resume found frozen (a RAM image taken while frozen). */
  thawedFilesystems?: number;
  /** Who thawed the restored guest: this agent, or the thaw guard first (its agent had died). */
  thawedBy?: ThawedBy;
  completionTime?: string;
  error?: { reason: RestoreFailureReason; message: string };
}

export interface VMRestore {
  apiVersion: "vmsnap.io/v1alpha1";
  kind: typeof RESTORE_KIND;
  metadata: V1ObjectMeta;
  spec: VMRestoreSpec;
  status?: VMRestoreStatus;
}

/** Why a restore failed (status.error.reason, the Ready condition's reason, a metric label). */
export const RestoreFailureReason = {
  SnapshotNotFound: "SnapshotNotFound",
  SnapshotNotReady: "SnapshotNotReady",
  SnapshotDeleted: "SnapshotDeleted",
  TargetRunning: "TargetRunning",
  TargetExists: "TargetExists",
  TargetBusy: "TargetBusy",
  /** An in-place target with no persistent definition: stopping it would delete it. */
  TargetTransient: "TargetTransient",
  /** The namespace does not own the domain (or it does not exist: the same answer, on purpose). */
  Forbidden: "Forbidden",
  NoMemoryImage: "NoMemoryImage",
  /** The snapshot says where its domain definition is kept, and it is not there. */
  DefinitionNotFound: "DefinitionNotFound",
  /** A disk this kind of restore cannot bring back (a file disk to another node). */
  UnsupportedDisk: "UnsupportedDisk",
  StorageError: "StorageError",
  StorageTimeout: "StorageTimeout",
  HypervisorError: "HypervisorError",
  /** As FailureReason.ControllerStalled: the controller, not libvirt, missed a deadline. */
  ControllerStalled: "ControllerStalled",
  ThawFailed: "ThawFailed",
  DeadlineExceeded: "DeadlineExceeded",
  Interrupted: "Interrupted",
  Internal: "Internal",
} as const;
export type RestoreFailureReason = (typeof RestoreFailureReason)[keyof typeof RestoreFailureReason];

/** The consistency a restore inherits from its snapshot's Quiesced condition. */
export function consistencyOf(snapshotConditions: readonly Condition[] | undefined): Consistency {
  const quiesced = snapshotConditions?.find((c) => c.type === "Quiesced");
  return quiesced?.status === "True" ? "ApplicationConsistent" : "CrashConsistent";
}

/**
 * The finalizer a restore puts on its VMSnapshot while it uses it: the snapshot's deletion (and
 * the removal of its artefacts) waits until the restore has finished with it.
 */
export function inUseFinalizer(restore: { metadata: V1ObjectMeta }): string {
  return `vmsnap.io/restore-${restore.metadata.uid}`;
}

/** Whether a VMSnapshot is held by a restore. */
export function inUseByRestore(snapshot: { metadata: V1ObjectMeta }): boolean {
  return (snapshot.metadata.finalizers ?? []).some((f) => f.startsWith("vmsnap.io/restore-"));
}
