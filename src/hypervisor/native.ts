// The compiled libvirt addon (native/): where it is loaded from, and its TypeScript shape.
// Every method runs on the addon's own threads and returns a promise; failures reject with a
// NativeError carrying libvirt's numeric code and domain (see errors.ts).
import { existsSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

export interface NativeDomainInfo {
  readonly name: string;
  readonly uuid: string;
  /** Hypervisor id; -1 when not running. */
  readonly id: number;
  /** virDomainState. */
  readonly state: number;
  /** The state's reason (virDomainRunningReason, virDomainPausedReason, ...). */
  readonly reason: number;
  readonly active: boolean;
  readonly persistent: boolean;
}

export interface NativeFsInfo {
  readonly mountpoint: string;
  readonly name: string;
  readonly fstype: string;
  /** Disk targets (`vda`) the filesystem lives on. */
  readonly devAliases: readonly string[];
}

/** A domain event; `event`/`detail` are (event, detail) or, for agent events, (state, reason). */
export interface NativeDomainEvent {
  readonly domain: string;
  readonly uuid: string;
  readonly event: number;
  readonly detail: number;
}

export interface NativeConnection {
  close(): Promise<void>;
  isAlive(): Promise<boolean>;
  domainInfo(name: string): Promise<NativeDomainInfo>;
  domainInfoByUUID(uuid: string): Promise<NativeDomainInfo>;
  domainXml(name: string, flags: number): Promise<string>;
  isActive(name: string): Promise<boolean>;
  fsFreeze(name: string, mountpoints: string[]): Promise<number>;
  fsThaw(name: string, mountpoints: string[]): Promise<number>;
  fsInfo(name: string): Promise<NativeFsInfo[]>;
  agentSetResponseTimeout(name: string, seconds: number): Promise<void>;
  /** virDomainQemuAgentCommand: a JSON command, the raw JSON reply. */
  qemuAgentCommand(name: string, command: string, timeoutSeconds: number): Promise<string>;
  /**
   * virDomainQemuMonitorCommandWithFiles: one QMP command (JSON), the raw JSON reply. `fds` are
   * this process's open descriptors passed along (QMP `getfd` names them in QEMU); the caller
   * keeps and closes them. Taints the domain ("custom-monitor") for its QEMU process's life.
   */
  qemuMonitorCommand(name: string, command: string, fds?: readonly number[]): Promise<string>;
  suspend(name: string): Promise<void>;
  resume(name: string): Promise<void>;
  /** Returns the new snapshot's name. */
  snapshotCreate(name: string, xml: string, flags: number): Promise<string>;
  snapshotList(name: string): Promise<string[]>;
  snapshotXml(name: string, snapshot: string): Promise<string>;
  snapshotDelete(name: string, snapshot: string, flags: number): Promise<void>;
  save(name: string, path: string, xml: string | null, flags: number): Promise<void>;
  restore(path: string, xml: string | null, flags: number): Promise<void>;
  /** Returns libvirt's callback id. Only DomainEventId.Lifecycle and AgentLifecycle. */
  registerDomainEvent(
    eventId: number,
    callback: (event: NativeDomainEvent) => void,
  ): Promise<number>;
  deregisterDomainEvent(callbackId: number): Promise<void>;
  /** virDomainGetMetadata (`uri` only for MetadataType.Element, else null); flags are
   *  ModificationImpact. Absent metadata rejects with code 80. */
  domainMetadata(name: string, type: number, uri: string | null, flags: number): Promise<string>;
  domainMetadataByUUID(
    uuid: string,
    type: number,
    uri: string | null,
    flags: number,
  ): Promise<string>;
  // Restore (VMRestore).
  /** virDomainDefineXMLFlags; returns the defined domain's name. */
  defineXml(xml: string, flags: number): Promise<string>;
  /** virDomainCreateWithFlags (e.g. START_PAUSED). */
  start(name: string, flags: number): Promise<void>;
  /** virDomainDestroyFlags: stops a running domain at once (its definition stays). */
  destroy(name: string, flags: number): Promise<void>;
  /** virDomainAbortJob: stops the domain's running job (a save, a migration). */
  abortJob(name: string): Promise<void>;
  /** virDomainGetJobInfo's type: 0 (VIR_DOMAIN_JOB_NONE) when no job runs. */
  jobType(name: string): Promise<number>;
  /** virDomainUndefineFlags. */
  undefine(name: string, flags: number): Promise<void>;
  /** virDomainSaveImageGetXMLDesc: the domain XML inside a save (memory) image. */
  saveImageXml(path: string, flags: number): Promise<string>;
  /** virDomainSetMetadata by UUID; `metadata` null removes the element of namespace `uri`. */
  setDomainMetadataByUUID(
    uuid: string,
    type: number,
    metadata: string | null,
    key: string | null,
    uri: string | null,
    flags: number,
  ): Promise<void>;
}

export interface NativeBinding {
  /** Opens `uri`; `onClose(virConnectCloseReason)` runs if libvirt drops the connection. */
  open(
    uri: string,
    keepaliveIntervalSeconds: number,
    keepaliveCount: number,
    onClose: (reason: number) => void,
  ): Promise<NativeConnection>;
  /** libvirt library version, major * 1_000_000 + minor * 1_000 + micro. */
  libvirtVersion(): number;
}

const ADDON = join("native", "build", "Release", "vmsnap_libvirt.node");
let loaded: NativeBinding | undefined;

/** The addon, loaded once. Found by walking up from this file: works from src/, dist/src/ and dist/bundle/. */
export function loadNative(): NativeBinding {
  if (loaded) return loaded;
  const here = dirname(fileURLToPath(import.meta.url));
  for (let dir = here; ; dir = dirname(dir)) {
    const candidate = join(dir, ADDON);
    if (existsSync(candidate)) {
      loaded = createRequire(import.meta.url)(candidate) as NativeBinding;
      return loaded;
    }
    if (dirname(dir) === dir) {
      throw new Error(
        `libvirt addon ${ADDON} not found above ${here}: run \`npm ci\` (or \`npm run install\`)`,
      );
    }
  }
}
