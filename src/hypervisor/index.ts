// The hypervisor adapter's public surface: everything the controller needs from libvirt, and
// nothing about Kubernetes.
export {
  Hypervisor,
  type CallOptions,
  type DomainInfo,
  type FreezeStatus,
  type FsInfo,
  type HypervisorOptions,
  type MetadataOptions,
  type SaveRestoreOptions,
  type Unsubscribe,
} from "./connection.ts";
export type { LostReason } from "./link.ts";
export type { AgentLifecycleEvent, LifecycleEvent } from "./events.ts";
export {
  classify,
  HypervisorError,
  type ClassifyContext,
  type HypervisorErrorReason,
  type Operation,
} from "./errors.ts";
export { ErrorCode, ErrorDomain } from "./error-codes.ts";
export {
  AgentTimeout,
  DomainXmlFlags,
  MetadataType,
  ModificationImpact,
  SaveRestoreFlags,
  SnapshotCreateFlags,
  SnapshotDeleteFlags,
  type AgentReason,
  type AgentState,
  type DomainState,
  type LifecycleEventType,
} from "./flags.ts";
export { parseDisks } from "./disk-inventory.ts";
export type { CephMonitor, Disk, DiskSnapshotPlan, FileSource, RbdSource } from "./disk.ts";
export {
  diskOnlySnapshotXml,
  memorySnapshotXml,
  type DiskOnlySnapshotSpec,
  type DiskOverlay,
  type MemorySnapshotSpec,
} from "./snapshot-xml.ts";
export { readSnapshot, referencedFiles, type SnapshotRecord } from "./snapshot-read.ts";
export { SNAPSHOT_NAME_PATTERN, filePathProblem, snapshotNameProblem } from "./snapshot-name.ts";
export {
  MEMORY_FILE_MODE,
  memorySnapshotName,
  removeMemory,
  saveMemory,
  type MemoryImage,
  type MemorySnapshotPort,
  type RemoveMemoryRequest,
  type SaveMemoryRequest,
} from "./memory-snapshot.ts";
