// Errors from the adapters, mapped to the typed failure reasons users see in status, Events and
// metrics. Classified by the adapters' typed reasons (libvirt code/domain, Ceph errno), never
// by message text, and never as "any exception means the guest isn't running".
import { FailureReason } from "../api/reasons.ts";
import { describeHypervisorError, HypervisorError } from "../hypervisor/errors.ts";
import { StorageError } from "../storage/rbd/errors.ts";

export interface Failure {
  readonly reason: FailureReason;
  readonly message: string;
}

/** The typed failure an adapter error stands for; `doing` says what vmsnap was doing. */
export function failureFrom(err: unknown, doing: string): Failure {
  if (err instanceof HypervisorError) {
    const where = `${doing}: ${describeHypervisorError(err)}`;
    switch (err.reason) {
      case "DomainNotFound":
        return { reason: FailureReason.DomainNotFound, message: where };
      case "DomainNotRunning":
        return { reason: FailureReason.DomainNotRunning, message: where };
      case "GuestAgentNotConfigured":
      case "GuestAgentUnresponsive":
        return { reason: FailureReason.GuestAgentUnavailable, message: where };
      case "QuiesceHookFailed":
      case "AlreadyFrozen":
        return { reason: FailureReason.QuiesceFailed, message: where };
      case "ProcessStalled":
        return { reason: FailureReason.ControllerStalled, message: where };
      default:
        return { reason: FailureReason.HypervisorError, message: where };
    }
  }
  if (err instanceof StorageError) {
    const where = `${doing}: ${err.reason}: ${err.message}`;
    return {
      reason:
        err.reason === "StorageTimeout" ? FailureReason.StorageTimeout : FailureReason.StorageError,
      message: where,
    };
  }
  return { reason: FailureReason.Internal, message: `${doing}: ${String(err)}` };
}
