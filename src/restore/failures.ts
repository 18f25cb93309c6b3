// Adapter errors as a restore's typed failure reasons, classified by the adapters' typed reasons
// (libvirt code, Ceph errno), never by message text.
import { RestoreFailureReason } from "../api/restore-types.ts";
import { describeHypervisorError, HypervisorError } from "../hypervisor/errors.ts";
import { StorageError } from "../storage/rbd/errors.ts";

export interface RestoreFailure {
  readonly reason: RestoreFailureReason;
  readonly message: string;
}

/** The snapshot records a kept domain definition that its storage no longer holds. */
export class DefinitionMissing extends Error {
  override readonly name = "DefinitionMissing";
}

/** The failure `err` stands for while vmsnap was `doing` something. */
export function restoreFailureFrom(err: unknown, doing: string): RestoreFailure {
  if (err instanceof DefinitionMissing) {
    return { reason: RestoreFailureReason.DefinitionNotFound, message: err.message };
  }
  if (err instanceof HypervisorError) {
    return {
      reason:
        err.reason === "ProcessStalled"
          ? RestoreFailureReason.ControllerStalled
          : RestoreFailureReason.HypervisorError,
      message: `${doing}: ${describeHypervisorError(err)}`,
    };
  }
  if (err instanceof StorageError) {
    return {
      reason:
        err.reason === "StorageTimeout"
          ? RestoreFailureReason.StorageTimeout
          : RestoreFailureReason.StorageError,
      message: `${doing}: ${err.reason}: ${err.message}`,
    };
  }
  return { reason: RestoreFailureReason.Internal, message: `${doing}: ${String(err)}` };
}
