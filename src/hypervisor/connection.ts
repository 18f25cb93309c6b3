// The Hypervisor: vmsnap's typed view of one libvirt daemon. Domains are addressed by name;
// every call has a deadline and fails with a HypervisorError carrying a typed reason. A
// connection (opening, deadlines, loss, reconnect, event registration) lives in link.ts; the
// calls are spread over a few of them, one call at a time on each, by lanes.ts.
import { ErrorCode, NOT_LIBVIRT } from "./error-codes.ts";
import { classify, HypervisorError, type Operation } from "./errors.ts";
import type { AgentLifecycleEvent, LifecycleEvent } from "./events.ts";
import {
  DOMAIN_STATES,
  MetadataType,
  ModificationImpact,
  nameOf,
  type DomainState,
} from "./flags.ts";
import { Lanes } from "./lanes.ts";
import { Link, type LinkOptions, type LostReason } from "./link.ts";
import { loadNative, type NativeBinding, type NativeDomainInfo } from "./native.ts";

export interface HypervisorOptions extends Partial<LinkOptions> {
  /** The addon; tests pass a fake. Defaults to native/build/Release/vmsnap_libvirt.node. */
  readonly binding?: NativeBinding;
  /**
   * At most this many libvirt connections, each carrying one call at a time (lanes.ts). 1 makes
   * every call wait for the one before it to return, as the thaw guard does.
   */
  readonly maxConnections?: number;
}

/**
 * Connections of the controller: more than the calls its workers make at once, so one hung
 * guest agent (or several) does not hold up the others' thaws; few enough to stay a small,
 * bounded number of libvirtd clients.
 */
export const DEFAULT_MAX_CONNECTIONS = 8;

/** Per-call options. */
export interface CallOptions {
  /** Overrides HypervisorOptions.callTimeoutMs for this call. */
  readonly timeoutMs?: number;
}

export interface DomainInfo {
  readonly name: string;
  readonly uuid: string;
  /** Hypervisor id while running. */
  readonly id: number | undefined;
  readonly state: DomainState;
  /** The state's reason, libvirt's number (e.g. virDomainPausedReason for "paused"). */
  readonly reason: number;
  readonly active: boolean;
  readonly persistent: boolean;
}

export interface FsInfo {
  readonly mountpoint: string;
  readonly name: string;
  readonly fstype: string;
  /** Disk targets (`vda`) the filesystem lives on. */
  readonly disks: readonly string[];
}

export type FreezeStatus = "frozen" | "thawed";

export interface SaveRestoreOptions extends CallOptions {
  /** Replacement domain XML (e.g. with disk paths rewritten). */
  readonly xml?: string;
  /** SaveRestoreFlags. */
  readonly flags?: number;
}

export interface MetadataOptions extends CallOptions {
  /** Address the domain by UUID instead of by name (a pinned identity). */
  readonly byUUID?: boolean;
  /** ModificationImpact: Current (default), Live or Config. */
  readonly flags?: number;
}

export type Unsubscribe = () => Promise<void>;

const DEFAULTS: LinkOptions = {
  callTimeoutMs: 30_000,
  openTimeoutMs: 10_000,
  keepaliveIntervalSeconds: 5,
  keepaliveCount: 3,
  reconnectMinMs: 500,
  reconnectMaxMs: 30_000,
};

/** How long a failed freeze may spend asking the agent whether the guest is frozen. */
const STATUS_PROBE_MS = 5_000;

/**
 * @example
 * const hv = await Hypervisor.open("qemu:///system", { callTimeoutMs: 15_000 });
 * await hv.fsFreeze("web-1");
 * try { await hv.createSnapshot("web-1", xml, SnapshotCreateFlags.DiskOnly | SnapshotCreateFlags.Atomic); }
 * finally { await hv.fsThaw("web-1"); }
 */
export class Hypervisor {
  /** The first connection, for events, loss and reconnect only: every call goes through lanes. */
  private readonly link: Pick<Link, "uri" | "connected" | "subscribe" | "onLost" | "onRestored">;

  private constructor(private readonly lanes: Lanes) {
    this.link = lanes.first;
  }

  /**
   * Connects to `uri` (e.g. `qemu:///system`, `test:///abs/path.xml`); fails if it can't.
   * A `test:///<file>` driver gives every connection its own state, so it gets one connection.
   */
  static async open(uri: string, options: HypervisorOptions = {}): Promise<Hypervisor> {
    const { binding, maxConnections, ...overrides } = options;
    const defined = Object.fromEntries(
      Object.entries(overrides).filter(([, v]) => v !== undefined),
    );
    const native = binding ?? loadNative();
    const linkOptions: LinkOptions = { ...DEFAULTS, ...defined };
    const link = new Link(uri, native, linkOptions);
    await link.connect();
    const max = ownStatePerConnection(uri) ? 1 : (maxConnections ?? DEFAULT_MAX_CONNECTIONS);
    return new Hypervisor(new Lanes(link, max, () => new Link(uri, native, linkOptions)));
  }

  get uri(): string {
    return this.link.uri;
  }

  /** Whether a connection is up now; calls reconnect on demand when it is not. */
  get connected(): boolean {
    return this.link.connected;
  }

  // ---- domains ---------------------------------------------------------------------------

  async domainInfo(name: string, options?: CallOptions): Promise<DomainInfo> {
    return toDomainInfo(
      await this.lanes.call("domainInfo", name, options?.timeoutMs, (c) => c.domainInfo(name)),
    );
  }

  async domainInfoByUUID(uuid: string, options?: CallOptions): Promise<DomainInfo> {
    return toDomainInfo(
      await this.lanes.call("domainInfo", uuid, options?.timeoutMs, (c) =>
        c.domainInfoByUUID(uuid),
      ),
    );
  }

  /** The domain's XML; `flags` are DomainXmlFlags (e.g. Inactive for the persistent config). */
  domainXml(name: string, options?: CallOptions & { readonly flags?: number }): Promise<string> {
    return this.lanes.call("domainXml", name, options?.timeoutMs, (c) =>
      c.domainXml(name, options?.flags ?? 0),
    );
  }

  /**
   * The element of the domain's `<metadata>` in XML namespace `uri`, as libvirt returns it
   * (the element with its namespace prefix removed), or undefined when the domain has none
   * (libvirt's code 80). A missing domain still fails, with DomainNotFound.
   *
   * @example
   * await hv.domainMetadata("db-01", "https://vmsnap.io/xmlns/owner/v1")
   * // "<owner>\n  <namespace>team-a</namespace>\n</owner>" or undefined
   */
  async domainMetadata(
    domain: string,
    uri: string,
    options?: MetadataOptions,
  ): Promise<string | undefined> {
    const flags = options?.flags ?? ModificationImpact.Current;
    try {
      return await this.lanes.call("domainMetadata", domain, options?.timeoutMs, (c) =>
        options?.byUUID === true
          ? c.domainMetadataByUUID(domain, MetadataType.Element, uri, flags)
          : c.domainMetadata(domain, MetadataType.Element, uri, flags),
      );
    } catch (err) {
      if (err instanceof HypervisorError && err.reason === "MetadataNotFound") return undefined;
      throw err;
    }
  }

  isActive(name: string, options?: CallOptions): Promise<boolean> {
    return this.lanes.call("isActive", name, options?.timeoutMs, (c) => c.isActive(name));
  }

  suspend(name: string, options?: CallOptions): Promise<void> {
    return this.lanes.call("suspend", name, options?.timeoutMs, (c) => c.suspend(name));
  }

  resume(name: string, options?: CallOptions): Promise<void> {
    return this.lanes.call("resume", name, options?.timeoutMs, (c) => c.resume(name));
  }

  /** Saves RAM and device state to `path` and stops the domain (virDomainSaveFlags). */
  save(name: string, path: string, options?: SaveRestoreOptions): Promise<void> {
    return this.lanes.call("save", name, options?.timeoutMs, (c) =>
      c.save(name, path, options?.xml ?? null, options?.flags ?? 0),
    );
  }

  /** Starts a domain from a saved image (virDomainRestoreFlags). A guest saved frozen comes
   *  back frozen: thaw afterwards. */
  restore(path: string, options?: SaveRestoreOptions): Promise<void> {
    return this.lanes.call("restore", path, options?.timeoutMs, (c) =>
      c.restore(path, options?.xml ?? null, options?.flags ?? 0),
    );
  }

  // ---- guest agent -----------------------------------------------------------------------

  /**
   * Freezes the guest's filesystems (all, or `mountpoints`); returns how many were frozen.
   * A code-1 failure is either a failed fsfreeze hook or an already frozen guest; the agent is
   * asked which (guest-fsfreeze-status), giving QuiesceHookFailed or AlreadyFrozen.
   * After any failure or Timeout, thaw: a freeze that timed out may still land in the guest.
   */
  async fsFreeze(
    name: string,
    mountpoints: readonly string[] = [],
    options?: CallOptions,
  ): Promise<number> {
    try {
      return await this.lanes.call("fsFreeze", name, options?.timeoutMs, (c) =>
        c.fsFreeze(name, [...mountpoints]),
      );
    } catch (err) {
      if (!(err instanceof HypervisorError) || err.code !== ErrorCode.InternalError) throw err;
      const status = await this.freezeStatus(name, { timeoutMs: STATUS_PROBE_MS }).catch(
        () => undefined,
      );
      throw err.withReason(
        classify(err.code, err.domain, { operation: "fsFreeze", guestFrozen: status === "frozen" }),
      );
    }
  }

  /** Thaws every frozen filesystem; returns how many were thawed. Harmless when none is. */
  fsThaw(name: string, options?: CallOptions): Promise<number> {
    // No mountpoints: QEMU can only thaw everything (74 otherwise).
    return this.lanes.call("fsThaw", name, options?.timeoutMs, (c) => c.fsThaw(name, []));
  }

  async fsInfo(name: string, options?: CallOptions): Promise<FsInfo[]> {
    const list = await this.lanes.call("fsInfo", name, options?.timeoutMs, (c) => c.fsInfo(name));
    return list.map((fs) => ({
      mountpoint: fs.mountpoint,
      name: fs.name,
      fstype: fs.fstype,
      disks: fs.devAliases,
    }));
  }

  /** The agent's own view (guest-fsfreeze-status), independent of libvirt's bookkeeping. */
  async freezeStatus(name: string, options?: CallOptions): Promise<FreezeStatus> {
    const reply = await this.agentCommand("freezeStatus", name, "guest-fsfreeze-status", options);
    if (reply === "frozen" || reply === "thawed") return reply;
    throw agentReplyError("freezeStatus", name, reply);
  }

  /** Resolves when the guest agent answers guest-ping. */
  async guestPing(name: string, options?: CallOptions): Promise<void> {
    await this.agentCommand("guestPing", name, "guest-ping", options);
  }

  /** How long libvirt waits for the agent on agent calls (virDomainAgentSetResponseTimeout);
   *  AgentTimeout.Block / Default / NoWait or seconds. */
  setAgentResponseTimeout(name: string, seconds: number, options?: CallOptions): Promise<void> {
    return this.lanes.call("setAgentResponseTimeout", name, options?.timeoutMs, (c) =>
      c.agentSetResponseTimeout(name, seconds),
    );
  }

  /**
   * One QMP command sent to QEMU through libvirt (for what libvirt 9.0 has no API for); resolves
   * with QMP's `return` value, rejects with QMP's error. `fds` go along with it (see
   * NativeConnection.qemuMonitorCommand). libvirt marks the domain tainted "custom-monitor".
   */
  async qmp(
    name: string,
    execute: string,
    args?: Record<string, unknown>,
    options?: CallOptions & { readonly fds?: readonly number[] },
  ): Promise<unknown> {
    const command = JSON.stringify(args === undefined ? { execute } : { execute, arguments: args });
    const raw = await this.lanes.call("monitorCommand", name, options?.timeoutMs, (c) =>
      c.qemuMonitorCommand(name, command, options?.fds ?? []),
    );
    let reply: { return?: unknown; error?: { class?: string; desc?: string } };
    try {
      reply = JSON.parse(raw) as typeof reply;
    } catch {
      throw new HypervisorError(`monitorCommand(${name}): ${execute}: unreadable reply ${raw}`, {
        reason: "Unknown",
        operation: "monitorCommand",
        target: name,
      });
    }
    if (reply.error) {
      throw new HypervisorError(
        `monitorCommand(${name}): ${execute}: ${reply.error.class ?? "Error"}: ${reply.error.desc ?? raw}`,
        { reason: "Unknown", operation: "monitorCommand", target: name },
      );
    }
    return reply.return;
  }

  // ---- snapshots -------------------------------------------------------------------------

  /** virDomainSnapshotCreateXML with SnapshotCreateFlags; returns the snapshot's name. */
  createSnapshot(name: string, xml: string, flags = 0, options?: CallOptions): Promise<string> {
    return this.lanes.call("createSnapshot", name, options?.timeoutMs, (c) =>
      c.snapshotCreate(name, xml, flags),
    );
  }

  listSnapshots(name: string, options?: CallOptions): Promise<string[]> {
    return this.lanes.call("listSnapshots", name, options?.timeoutMs, (c) => c.snapshotList(name));
  }

  snapshotXml(name: string, snapshot: string, options?: CallOptions): Promise<string> {
    return this.lanes.call("snapshotXml", name, options?.timeoutMs, (c) =>
      c.snapshotXml(name, snapshot),
    );
  }

  /** Deletes with SnapshotDeleteFlags; a missing snapshot fails with SnapshotNotFound. */
  deleteSnapshot(name: string, snapshot: string, flags = 0, options?: CallOptions): Promise<void> {
    return this.lanes.call("deleteSnapshot", name, options?.timeoutMs, (c) =>
      c.snapshotDelete(name, snapshot, flags),
    );
  }

  // ---- restore (VMRestore) ---------------------------------------------------------------

  /** Defines (or redefines) a persistent domain from XML; returns its name. */
  defineXml(xml: string, options?: CallOptions & { readonly flags?: number }): Promise<string> {
    return this.lanes.call("define", "(xml)", options?.timeoutMs, (c) =>
      c.defineXml(xml, options?.flags ?? 0),
    );
  }

  /** Starts a defined domain; `flags` are StartFlags (e.g. Paused). */
  start(name: string, options?: CallOptions & { readonly flags?: number }): Promise<void> {
    return this.lanes.call("start", name, options?.timeoutMs, (c) =>
      c.start(name, options?.flags ?? 0),
    );
  }

  /** Stops a running domain at once, like pulling the plug; the definition stays. */
  destroy(name: string, options?: CallOptions): Promise<void> {
    return this.lanes.call("destroy", name, options?.timeoutMs, (c) => c.destroy(name, 0));
  }

  /** Stops the domain's running job (e.g. a memory save past its budget). */
  abortJob(name: string, options?: CallOptions): Promise<void> {
    return this.lanes.call("abortJob", name, options?.timeoutMs, (c) => c.abortJob(name));
  }

  /** Whether a job (a save, a migration) runs on the domain now. */
  async jobActive(name: string, options?: CallOptions): Promise<boolean> {
    return (
      (await this.lanes.call("jobType", name, options?.timeoutMs, (c) => c.jobType(name))) !== 0
    );
  }

  /** Removes a domain's persistent definition; `flags` are UndefineFlags. */
  undefine(name: string, options?: CallOptions & { readonly flags?: number }): Promise<void> {
    return this.lanes.call("undefine", name, options?.timeoutMs, (c) =>
      c.undefine(name, options?.flags ?? 0),
    );
  }

  /** The domain XML stored in a save or external memory image (DomainXmlFlags.Secure allowed). */
  saveImageXml(path: string, options?: CallOptions & { readonly flags?: number }): Promise<string> {
    return this.lanes.call("saveImageXml", path, options?.timeoutMs, (c) =>
      c.saveImageXml(path, options?.flags ?? 0),
    );
  }

  /**
   * Writes (or, with `xml` undefined, removes) the element of namespace `uri` in the `<metadata>`
   * of the domain with this UUID, under the prefix `key`. `flags` are ModificationImpact (Live:
   * the running domain only, gone when it stops).
   */
  setDomainMetadata(
    uuid: string,
    uri: string,
    key: string,
    xml: string | undefined,
    options?: CallOptions & { readonly flags?: number },
  ): Promise<void> {
    return this.lanes.call("setDomainMetadata", uuid, options?.timeoutMs, (c) =>
      c.setDomainMetadataByUUID(
        uuid,
        MetadataType.Element,
        xml ?? null,
        xml === undefined ? null : key,
        uri,
        options?.flags ?? ModificationImpact.Current,
      ),
    );
  }

  // ---- events and connection -------------------------------------------------------------

  /** Domain lifecycle events of every domain; resolves once libvirt delivers them. Survives
   *  reconnects (events during an outage are lost: re-read state on onReconnected). */
  onLifecycle(listener: (event: LifecycleEvent) => void): Promise<Unsubscribe> {
    return this.link.subscribe("lifecycle", listener);
  }

  /** Guest agent connected/disconnected events of every domain. */
  onAgentLifecycle(listener: (event: AgentLifecycleEvent) => void): Promise<Unsubscribe> {
    return this.link.subscribe("agent", listener);
  }

  onConnectionLost(listener: (reason: LostReason) => void): () => void {
    return this.link.onLost(listener);
  }

  onReconnected(listener: () => void): () => void {
    return this.link.onRestored(listener);
  }

  /** Closes the connections; later calls fail with ConnectionLost. Hung calls are abandoned. */
  close(): Promise<void> {
    return this.lanes.close();
  }

  private async agentCommand(
    operation: Operation,
    name: string,
    execute: string,
    options: CallOptions | undefined,
  ): Promise<unknown> {
    const ms = options?.timeoutMs ?? this.lanes.options.callTimeoutMs;
    // libvirt's own agent wait ends with our deadline, so its thread doesn't linger after it.
    const seconds = Math.max(1, Math.ceil(ms / 1000));
    const raw = await this.lanes.call(operation, name, ms, (c) =>
      c.qemuAgentCommand(name, JSON.stringify({ execute }), seconds),
    );
    try {
      return (JSON.parse(raw) as { return?: unknown }).return;
    } catch {
      throw agentReplyError(operation, name, raw);
    }
  }
}

/** `test:///<absolute path>`: the test driver loads a fresh copy of that file per connection. */
function ownStatePerConnection(uri: string): boolean {
  return /^test:\/\/\/./.test(uri) && uri !== "test:///default";
}

function toDomainInfo(info: NativeDomainInfo): DomainInfo {
  return {
    name: info.name,
    uuid: info.uuid,
    id: info.id >= 0 ? info.id : undefined,
    state: nameOf(DOMAIN_STATES, info.state),
    reason: info.reason,
    active: info.active,
    persistent: info.persistent,
  };
}

function agentReplyError(operation: Operation, name: string, reply: unknown): HypervisorError {
  return new HypervisorError(
    `${operation}(${name}): unexpected agent reply ${JSON.stringify(reply)}`,
    {
      reason: "Unknown",
      operation,
      code: NOT_LIBVIRT,
      target: name,
    },
  );
}
