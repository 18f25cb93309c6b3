// The libvirt file-disk storage package's public surface: the backend, the narrow part of the
// Hypervisor it needs, and the pure planning it does (validation, overlay placement).
export {
  fileDiskOf,
  LibvirtFileBackend,
  type LibvirtFileBackendOptions,
  type LibvirtFilePort,
} from "./backend.ts";
export {
  assertOverlaysUsable,
  overlayPath,
  planFileSnapshot,
  type FileSnapshotPlan,
  type PlannedFileDisk,
} from "./plan.ts";
