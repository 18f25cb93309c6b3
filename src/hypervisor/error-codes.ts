// libvirt's error numbers (virErrorNumber) and error domains (virErrorDomain) that vmsnap
// classifies, named. Values are libvirt's ABI (virterror.h). See docs/libvirt-facts.md for the
// situations each one was measured in.

/** virErrorNumber values vmsnap distinguishes. */
export const ErrorCode = {
  InternalError: 1,
  NoSupport: 3,
  NoConnect: 5,
  InvalidConn: 6,
  InvalidArg: 8,
  SystemError: 38,
  Rpc: 39,
  NoDomain: 42,
  AuthFailed: 45,
  OperationInvalid: 55,
  ConfigUnsupported: 67,
  OperationTimeout: 68,
  NoDomainSnapshot: 72,
  ArgumentUnsupported: 74,
  /** virDomainGetMetadata: the domain has no such metadata (no element in that namespace). */
  NoDomainMetadata: 80,
  OperationUnsupported: 84,
  AgentUnresponsive: 86,
  AgentUnsynced: 97,
} as const;

/** virErrorDomain values vmsnap distinguishes: which part of libvirt raised the error. */
export const ErrorDomain = {
  None: 0,
  Rpc: 7,
  Qemu: 10,
  Test: 12,
  Remote: 13,
  Domain: 20,
} as const;

/** Not a libvirt error: raised by vmsnap itself (deadline, closed adapter, bad agent reply). */
export const NOT_LIBVIRT = -1;
