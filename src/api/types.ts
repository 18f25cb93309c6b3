// The VMSnapshot resource as TypeScript types: what users write (spec) and what the agent
// reports (status). crds/vmsnap.io_vmsnapshots.yaml is the schema the API server enforces.
import type { V1ObjectMeta } from "@kubernetes/client-node";
import type { ResourceDescriptor } from "../kube/resource.ts";
import type { DiskSnapshotHandle } from "../storage/backend.ts";

export const GROUP = "vmsnap.io";
export const VERSION = "v1alpha1";
export const PLURAL = "vmsnapshots";
export const KIND = "VMSnapshot";
export const API_VERSION = `${GROUP}/${VERSION}`;

/** The VMSnapshot resource, for the informer, the object client and Events of src/kube. */
export const vmsnapshots: ResourceDescriptor = {
  group: GROUP,
  version: VERSION,
  plural: PLURAL,
  kind: KIND,
  namespaced: true,
};

/**
 * The field selector of one host's snapshots: each agent lists and watches only its own node's
 * (the CRD declares `spec.source.node` a selectable field).
 */
export function snapshotsOnNode(node: string): string {
  return `spec.source.node=${node}`;
}

export const PHASES = [
  "Pending",
  "Frozen",
  "DisksSnapshotted",
  "MemorySaved",
  "Thawed",
  "Succeeded",
  "Failed",
] as const;
export type Phase = (typeof PHASES)[number];

export type QuiescePolicy = "Required" | "IfAvailable" | "Disabled";
/** How a VM snapshot's RAM is saved: with the vCPUs paused until it is on disk (Paused), or
 *  captured at the pause and written while the guest runs (Live: QEMU's background snapshot). */
export type MemoryMode = "Paused" | "Live";
export type DeletionPolicy = "Delete" | "Retain";

export interface VMSnapshotSpec {
  source: { domain: string; node: string };
  memory?: boolean;
  memoryMode?: MemoryMode;
  quiesce?: QuiescePolicy;
  freezeTimeout?: string;
  failureDeadline?: string;
  disks?: { exclude?: string[] };
  deletionPolicy?: DeletionPolicy;
}

export type ConditionStatus = "True" | "False" | "Unknown";

export interface Condition {
  type: "Ready" | "Reconciling" | "Stalled" | "Quiesced" | "Thawed";
  status: ConditionStatus;
  reason: string;
  message: string;
  lastTransitionTime: string;
  observedGeneration?: number;
}

export type Indication =
  "Online" | "Offline" | "Paused" | "GuestAgent" | "NoGuestAgent" | "Quiesced" | "Unquiesced";

export interface VMSnapshotStatus {
  phase?: Phase;
  observedGeneration?: number;
  conditions?: Condition[];
  indications?: Indication[];
  disks?: DiskSnapshotHandle[];
  excludedDisks?: string[];
  memory?: { file: string; bytes: number; mode?: MemoryMode };
  /** Live memory: when RAM was captured (write tracking armed, the vCPUs running again). */
  memoryCapturedAt?: string;
  /** Where the domain's definition as it was at the snapshot is kept (with the disk snapshots);
   *  restores define from it. Absent on snapshots made before vmsnap kept one. */
  definition?: { backend: string; location: string };
  snapshotName?: string;
  freezeDeadline?: string;
  domainUUID?: string;
  frozenAt?: string;
  thawedAt?: string;
  freezeDurationMs?: number;
  pausedAt?: string;
  downtimeMs?: number;
  startTime?: string;
  completionTime?: string;
  readyToUse?: boolean;
  error?: { reason: string; message: string };
}

export interface VMSnapshot {
  apiVersion: typeof API_VERSION;
  kind: typeof KIND;
  metadata: V1ObjectMeta;
  spec: VMSnapshotSpec;
  status?: VMSnapshotStatus;
}
