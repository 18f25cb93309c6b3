// The VMRestore resource as TypeScript types: what users write (spec), what the agent reports
// (status), and the typed reasons a restore fails with. crds/vmsnap.io_vmrestores.yaml is the
// schema the API server enforces.
import type { V1ObjectMeta } from "@kubernetes/client-node";
import type { Condition } from "./types.ts";

export const RESTORE_PLURAL = "vmrestores";
export const RESTORE_KIND = "VMRestore";

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

export interface VMRestoreStatus {
  phase?: RestorePhase;
  observedGeneration?: number;
  conditions?: RestoreCondition[];
  node?: string;
  targetDomain?: string;
  targetUUID?: string;
  restoredDisks?: RestoredDiskStatus[];
  memoryRestored?: boolean;
  consistency?: Consistency;
  startTime?: string;
  /** Written before the resume: a restarted agent thaws the guest by then (write-ahead). */
  thawDeadline?: string;
  resumedAt?: string;
  thawedAt?: string;
  resumeToThawMs?: number;
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
  NoMemoryImage: "NoMemoryImage",
  StorageError: "StorageError",
  StorageTimeout: "StorageTimeout",
  HypervisorError: "HypervisorError",
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
