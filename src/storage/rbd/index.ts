// The RBD storage package's public surface: the backend, its configuration, the typed error,
// and the image/group operations the controller or tools may use directly.
export { RbdBackend, type RbdBackendOptions } from "./backend.ts";
export { DEFAULT_OP_TIMEOUT_SECONDS, type RbdConfig } from "./config.ts";
export {
  StorageError,
  isStorageError,
  type StorageErrorReason,
  type StorageErrorDetails,
} from "./errors.ts";
export { createRbdRunner, connectionArgs, type RbdRunner, type RbdResult } from "./runner.ts";
export {
  assertValidName,
  nameProblem,
  groupNameForDomainUUID,
  legacyGroupNameForDomain,
  MAX_NAME_LENGTH,
  type NameKind,
} from "./names.ts";
export {
  imagePath,
  imageSnapPath,
  groupPath,
  groupSnapPath,
  poolPath,
  type ImageSpec,
  type GroupSpec,
} from "./specs.ts";
export { planRbdSnapshot, type RbdPlan, type PlannedDisk, type PlanOptions } from "./plan.ts";
export {
  createImageSnapshot,
  listImageSnapshots,
  removeImageSnapshot,
  rollbackImageSnapshot,
  type ImageSnapshot,
} from "./image-snapshots.ts";
export {
  createGroupSnapshot,
  listGroupSnapshots,
  removeGroupSnapshot,
  rollbackGroupSnapshot,
  type GroupSnapshot,
} from "./group-snapshots.ts";
export {
  ensureGroup,
  groupExists,
  listGroupImages,
  groupOfImage,
  addImageToGroup,
  removeImageFromGroup,
  syncGroupMembers,
  membershipDifference,
  removeGroupIfUnused,
} from "./groups.ts";
export { mapRbdFailure, stderrErrno, stderrSummary } from "./error-map.ts";
