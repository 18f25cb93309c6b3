// The hypervisor error taxonomy: every failure of the adapter is a HypervisorError whose
// `reason` was derived from libvirt's numeric code and error domain plus what was being done —
// never from message text, which libvirt translates and rewords between versions.
import { ErrorCode, ErrorDomain, NOT_LIBVIRT } from "./error-codes.ts";

/** What the adapter was doing when it failed; part of the classification (see `classify`). */
export type Operation =
  | "open"
  | "close"
  | "domainInfo"
  | "domainXml"
  | "domainMetadata"
  | "setDomainMetadata"
  | "isActive"
  | "fsFreeze"
  | "fsThaw"
  | "fsInfo"
  | "freezeStatus"
  | "guestPing"
  | "setAgentResponseTimeout"
  | "suspend"
  | "resume"
  | "createSnapshot"
  | "listSnapshots"
  | "snapshotXml"
  | "deleteSnapshot"
  | "save"
  | "restore"
  | "subscribe"
  | "monitorCommand"
  | "define"
  | "start"
  | "destroy"
  | "abortJob"
  | "jobType"
  | "undefine"
  | "saveImageXml";

export type HypervisorErrorReason =
  /** No domain of that name or UUID (42). */
  | "DomainNotFound"
  /** The domain is shut off or paused where it must run (55). */
  | "DomainNotRunning"
  /** The domain has no guest-agent channel (74 on an agent call). */
  | "GuestAgentNotConfigured"
  /** The agent is not connected, hung, or out of sync (86, 97). */
  | "GuestAgentUnresponsive"
  /** A freeze failed, typically a fsfreeze hook; the guest stayed thawed (1 on freeze). */
  | "QuiesceHookFailed"
  /** A freeze failed because the guest already is frozen (1 on freeze, agent says frozen). */
  | "AlreadyFrozen"
  /** The driver or hypervisor cannot do this, or refuses these flags (3, 67, 84; 8 or 74 as noted). */
  | "Unsupported"
  /** No snapshot of that name (72). */
  | "SnapshotNotFound"
  /** The domain has no metadata of that type or namespace (80); domainMetadata() returns
   *  undefined for it instead of failing. */
  | "MetadataNotFound"
  /** An argument libvirt rejected outside the flag refusals above (8). */
  | "InvalidArgument"
  /** The call's deadline passed (vmsnap's own, or libvirt's job timeout 68). */
  | "Timeout"
  /**
   * The call's deadline passed while this process was not running (stopped, a long GC pause,
   * starved of CPU), and no answer came in a grace after it ran again: not libvirt's fault as
   * far as anyone can tell. Like Timeout, the call's outcome is unknown (deadline.ts).
   */
  | "ProcessStalled"
  /** No working connection to libvirt: it died, was never made, or the adapter is closed. */
  | "ConnectionLost"
  | "Unknown";

/**
 * Whether a failed call may still have happened (or happen later): vmsnap stopped waiting for
 * it, so whatever it was asked to do must be undone or checked (a freeze thawed, a save aborted).
 */
export function outcomeUnknown(err: unknown): boolean {
  return (
    err instanceof HypervisorError && (err.reason === "Timeout" || err.reason === "ProcessStalled")
  );
}

/**
 * A failure as status and Events say it: libvirt's code and vmsnap's reason, except for a stall
 * of this process, which is no libvirt error at all and must not read like one.
 */
export function describeHypervisorError(err: HypervisorError): string {
  return err.reason === "ProcessStalled"
    ? `this process stalled, not libvirt (ProcessStalled): ${err.message}`
    : `libvirt error ${err.code} (${err.reason}): ${err.message}`;
}

/** Facts besides code and domain that decide the reason. */
export interface ClassifyContext {
  readonly operation?: Operation;
  /** From the addon: was the connection alive right after the failure? */
  readonly connectionAlive?: boolean;
  /** For a failed freeze: the agent's answer to guest-fsfreeze-status, if it gave one. */
  readonly guestFrozen?: boolean;
}

const AGENT_OPERATIONS: ReadonlySet<Operation> = new Set([
  "fsFreeze",
  "fsInfo",
  "freezeStatus",
  "guestPing",
  "setAgentResponseTimeout",
]);

// Operations whose only code-8 failures are refused flag combinations: the test driver's
// DISK_ONLY (0x10), QEMU's QUIESCE without DISK_ONLY, save/restore flags a driver lacks.
const FLAG_OPERATIONS: ReadonlySet<Operation> = new Set([
  "createSnapshot",
  "deleteSnapshot",
  "save",
  "restore",
]);

// Transport failures: the daemon can't be reached or the socket broke (open, or a call whose
// connection died before the addon could ask whether it is alive).
const TRANSPORT_DOMAINS: ReadonlySet<number> = new Set([ErrorDomain.Rpc, ErrorDomain.Remote]);

/**
 * The typed reason of a libvirt failure.
 *
 * @example
 * classify(42, 12)                                   // "DomainNotFound"
 * classify(1, 10, { operation: "fsFreeze", guestFrozen: true })  // "AlreadyFrozen"
 * classify(74, 10, { operation: "fsThaw" })          // "Unsupported" (thaw with mountpoints)
 */
export function classify(
  code: number,
  domain: number,
  context: ClassifyContext = {},
): HypervisorErrorReason {
  const { operation, connectionAlive, guestFrozen } = context;
  if (connectionAlive === false) return "ConnectionLost";
  switch (code) {
    case ErrorCode.NoDomain:
      return "DomainNotFound";
    case ErrorCode.OperationInvalid:
      return "DomainNotRunning";
    case ErrorCode.AgentUnresponsive:
    case ErrorCode.AgentUnsynced:
      return "GuestAgentUnresponsive";
    case ErrorCode.ArgumentUnsupported:
      // QEMU says 74 both for "no agent channel" and for thawing with mountpoints (it can only
      // thaw everything), so the operation decides.
      if (operation === "fsThaw") return "Unsupported";
      return operation !== undefined && AGENT_OPERATIONS.has(operation)
        ? "GuestAgentNotConfigured"
        : "Unsupported";
    case ErrorCode.InternalError:
      // A failed freeze hook and "agent is in frozen state" share code 1; only the agent's own
      // status tells them apart. Without that answer, assume the hook: the guest is thawed.
      if (operation === "fsFreeze")
        return guestFrozen === true ? "AlreadyFrozen" : "QuiesceHookFailed";
      return "Unknown";
    case ErrorCode.NoSupport:
    case ErrorCode.ConfigUnsupported:
    case ErrorCode.OperationUnsupported:
      return "Unsupported";
    case ErrorCode.InvalidArg:
      return operation !== undefined && FLAG_OPERATIONS.has(operation)
        ? "Unsupported"
        : "InvalidArgument";
    case ErrorCode.NoDomainSnapshot:
      return "SnapshotNotFound";
    case ErrorCode.NoDomainMetadata:
      return "MetadataNotFound";
    case ErrorCode.OperationTimeout:
      return "Timeout";
    case ErrorCode.NoConnect:
    case ErrorCode.InvalidConn:
      return "ConnectionLost";
    case ErrorCode.SystemError:
    case ErrorCode.Rpc:
    case ErrorCode.AuthFailed:
      return TRANSPORT_DOMAINS.has(domain) || operation === "open" ? "ConnectionLost" : "Unknown";
    default:
      return "Unknown";
  }
}

export interface HypervisorErrorInit {
  readonly reason: HypervisorErrorReason;
  readonly operation: Operation;
  /** libvirt's virErrorNumber, or NOT_LIBVIRT. */
  readonly code?: number;
  /** libvirt's virErrorDomain, or NOT_LIBVIRT. */
  readonly domain?: number;
  /** The libvirt domain (VM) the call was about, if any. */
  readonly target?: string;
  readonly cause?: unknown;
}

/** A failed hypervisor call: the typed reason, and libvirt's own code/domain for the record. */
export class HypervisorError extends Error {
  override readonly name = "HypervisorError";
  readonly reason: HypervisorErrorReason;
  readonly operation: Operation;
  readonly code: number;
  readonly domain: number;
  readonly target: string | undefined;

  constructor(message: string, init: HypervisorErrorInit) {
    super(message, init.cause === undefined ? undefined : { cause: init.cause });
    this.reason = init.reason;
    this.operation = init.operation;
    this.code = init.code ?? NOT_LIBVIRT;
    this.domain = init.domain ?? NOT_LIBVIRT;
    this.target = init.target;
  }

  /** The same failure with a reason learnt afterwards (e.g. the agent's freeze status). */
  withReason(reason: HypervisorErrorReason): HypervisorError {
    return new HypervisorError(this.message, { ...this, reason, cause: this.cause });
  }
}

/** An error as the addon rejects with it. */
export interface NativeError extends Error {
  readonly code: number;
  readonly domain: number;
  readonly connectionAlive: boolean;
}

export function isNativeError(err: unknown): err is NativeError {
  return (
    err instanceof Error &&
    typeof (err as Partial<NativeError>).code === "number" &&
    typeof (err as Partial<NativeError>).domain === "number"
  );
}

/** Any failure of `operation` as a HypervisorError, classified when it came from libvirt. */
export function toHypervisorError(
  err: unknown,
  operation: Operation,
  target?: string,
): HypervisorError {
  if (err instanceof HypervisorError) return err;
  const where = target === undefined ? operation : `${operation}(${target})`;
  if (isNativeError(err)) {
    const reason = classify(err.code, err.domain, {
      operation,
      connectionAlive: err.connectionAlive,
    });
    return new HypervisorError(`${where}: ${err.message}`, {
      reason,
      operation,
      code: err.code,
      domain: err.domain,
      target,
      cause: err,
    });
  }
  const message = err instanceof Error ? err.message : String(err);
  return new HypervisorError(`${where}: ${message}`, {
    reason: "Unknown",
    operation,
    target,
    cause: err,
  });
}
