// libvirt's numeric flags and enums that vmsnap passes or receives, named. Values are libvirt's
// ABI (libvirt-domain.h, libvirt-domain-snapshot.h, libvirt-host.h) and never change.

/** virDomainSnapshotCreateFlags. */
export const SnapshotCreateFlags = {
  Redefine: 1 << 0,
  Current: 1 << 1,
  NoMetadata: 1 << 2,
  Halt: 1 << 3,
  DiskOnly: 1 << 4,
  ReuseExt: 1 << 5,
  Quiesce: 1 << 6,
  Atomic: 1 << 7,
  Live: 1 << 8,
  Validate: 1 << 9,
} as const;

/** virDomainSnapshotDeleteFlags. */
export const SnapshotDeleteFlags = {
  Children: 1 << 0,
  MetadataOnly: 1 << 1,
  ChildrenOnly: 1 << 2,
} as const;

/** virDomainSaveRestoreFlags, for save() and restore(). */
export const SaveRestoreFlags = {
  BypassCache: 1 << 0,
  Running: 1 << 1,
  Paused: 1 << 2,
  ResetNvram: 1 << 3,
} as const;

/** virDomainXMLFlags, for domainXml(). */
export const DomainXmlFlags = {
  Secure: 1 << 0,
  Inactive: 1 << 1,
  UpdateCpu: 1 << 2,
  Migratable: 1 << 3,
} as const;

/** virDomainMetadataType, for domainMetadata(). */
export const MetadataType = {
  Description: 0,
  Title: 1,
  /** An element of the domain's <metadata>, addressed by its XML namespace URI. */
  Element: 2,
} as const;

/** virDomainModificationImpact: which definition a metadata read addresses. Current is the live
 *  one of a running domain and the persistent one of a shut-off domain. */
export const ModificationImpact = {
  Current: 0,
  Live: 1 << 0,
  Config: 1 << 1,
} as const;

/** virDomainState, indexed by its value. */
export const DOMAIN_STATES = [
  "nostate",
  "running",
  "blocked",
  "paused",
  "shutdown",
  "shutoff",
  "crashed",
  "pmsuspended",
] as const;
export type DomainState = (typeof DOMAIN_STATES)[number] | "unknown";

/** virDomainEventType (lifecycle events), indexed by its value. */
export const LIFECYCLE_EVENTS = [
  "defined",
  "undefined",
  "started",
  "suspended",
  "resumed",
  "stopped",
  "shutdown",
  "pmsuspended",
  "crashed",
] as const;
export type LifecycleEventType = (typeof LIFECYCLE_EVENTS)[number] | "unknown";

/** virConnectDomainEventAgentLifecycleState, indexed by its value (0 is unused). */
export const AGENT_STATES = ["unknown", "connected", "disconnected"] as const;
export type AgentState = (typeof AGENT_STATES)[number];

/** virConnectDomainEventAgentLifecycleReason, indexed by its value. */
export const AGENT_REASONS = ["unknown", "domain-started", "channel"] as const;
export type AgentReason = (typeof AGENT_REASONS)[number];

/** virDomainEventID values the addon can register. */
export const DomainEventId = {
  Lifecycle: 0,
  AgentLifecycle: 18,
} as const;

/** virConnectCloseReason: why libvirt closed a connection. */
export const CloseReason = {
  Error: 0,
  Eof: 1,
  Keepalive: 2,
  Client: 3,
} as const;

/** virDomainAgentResponseTimeoutValues: special agent timeouts besides a number of seconds. */
export const AgentTimeout = {
  Block: -2,
  Default: -1,
  NoWait: 0,
} as const;

/** The name of a numeric value in one of the tables above, or "unknown" for newer values. */
export function nameOf<T extends string>(table: readonly T[], value: number): T | "unknown" {
  return table[value] ?? "unknown";
}

/** virDomainCreateFlags, for start(). */
export const StartFlags = {
  Paused: 1 << 0,
  Autodestroy: 1 << 1,
  BypassCache: 1 << 2,
  ForceBoot: 1 << 3,
  Validate: 1 << 4,
} as const;

/** virDomainUndefineFlagsValues, for undefine(). */
export const UndefineFlags = {
  ManagedSave: 1 << 0,
  SnapshotsMetadata: 1 << 1,
  Nvram: 1 << 2,
  KeepNvram: 1 << 3,
  CheckpointsMetadata: 1 << 4,
} as const;
