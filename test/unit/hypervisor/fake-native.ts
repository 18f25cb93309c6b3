// A scriptable stand-in for the libvirt addon, to test the adapter's connection handling
// (deadlines, loss, reconnect, event re-registration) without a hypervisor that misbehaves on
// cue. Every method resolves per `script`, or with a harmless default.
import type {
  NativeBinding,
  NativeConnection,
  NativeDomainEvent,
} from "../../../src/hypervisor/native.ts";

type Method = Exclude<
  keyof NativeConnection,
  "registerDomainEvent" | "deregisterDomainEvent" | "close"
>;
type Script = Partial<Record<Method, (...args: never[]) => Promise<unknown>>>;

export function nativeError(
  code: number,
  domain: number,
  message: string,
  connectionAlive = true,
): Error {
  return Object.assign(new Error(message), { code, domain, connectionAlive });
}

export const never = <T>(): Promise<T> => new Promise<T>(() => {});

export class FakeConnection {
  closed = false;
  readonly calls: Array<[string, unknown[]]> = [];
  readonly events = new Map<
    number,
    { eventId: number; callback: (e: NativeDomainEvent) => void }
  >();
  private nextId = 1;

  constructor(
    readonly script: Script,
    readonly onClose: (reason: number) => void,
    readonly registerGate: () => Promise<void>,
  ) {}

  /** Delivers a domain event to every listener registered for `eventId`, as libvirt would. */
  emit(eventId: number, event: NativeDomainEvent): void {
    for (const e of this.events.values()) if (e.eventId === eventId) e.callback(event);
  }

  asNative(): NativeConnection {
    const call =
      (name: Method, fallback: unknown) =>
      (...args: unknown[]): Promise<never> => {
        this.calls.push([name, args]);
        const scripted = this.script[name] as ((...a: unknown[]) => Promise<never>) | undefined;
        return scripted ? scripted(...args) : (Promise.resolve(fallback) as Promise<never>);
      };
    return {
      close: async () => {
        this.closed = true;
      },
      isAlive: call("isAlive", true),
      domainInfo: call("domainInfo", {
        name: "vm",
        uuid: "u",
        id: 1,
        state: 1,
        reason: 1,
        active: true,
        persistent: true,
      }),
      domainInfoByUUID: call("domainInfoByUUID", {}),
      domainXml: call("domainXml", "<domain/>"),
      isActive: call("isActive", true),
      fsFreeze: call("fsFreeze", 2),
      fsThaw: call("fsThaw", 2),
      fsInfo: call("fsInfo", []),
      agentSetResponseTimeout: call("agentSetResponseTimeout", undefined),
      qemuAgentCommand: call("qemuAgentCommand", '{"return":{}}'),
      qemuMonitorCommand: call("qemuMonitorCommand", '{"return":{}}'),
      suspend: call("suspend", undefined),
      resume: call("resume", undefined),
      snapshotCreate: call("snapshotCreate", "snap"),
      snapshotList: call("snapshotList", []),
      snapshotXml: call("snapshotXml", "<domainsnapshot/>"),
      snapshotDelete: call("snapshotDelete", undefined),
      save: call("save", undefined),
      restore: call("restore", undefined),
      domainMetadata: call("domainMetadata", "<owner/>"),
      domainMetadataByUUID: call("domainMetadataByUUID", "<owner/>"),
      defineXml: call("defineXml", "vm"),
      start: call("start", undefined),
      destroy: call("destroy", undefined),
      abortJob: call("abortJob", undefined),
      jobType: call("jobType", 0),
      undefine: call("undefine", undefined),
      saveImageXml: call("saveImageXml", "<domain/>"),
      setDomainMetadataByUUID: call("setDomainMetadataByUUID", undefined),
      registerDomainEvent: async (eventId, callback) => {
        await this.registerGate();
        const id = this.nextId++;
        this.events.set(id, { eventId, callback });
        return id;
      },
      deregisterDomainEvent: async (id) => {
        this.events.delete(id);
      },
    };
  }
}

export class FakeBinding implements NativeBinding {
  readonly connections: FakeConnection[] = [];
  /** Script for connections opened from now on. */
  script: Script = {};
  /** What open() waits for before it hands out a connection; reject to fail it. */
  gate: () => Promise<void> = () => Promise.resolve();
  /** What event registration on connections opened from now on waits for. */
  registerGate: () => Promise<void> = () => Promise.resolve();

  async open(
    _uri: string,
    _interval: number,
    _count: number,
    onClose: (reason: number) => void,
  ): Promise<NativeConnection> {
    await this.gate();
    const conn = new FakeConnection(this.script, onClose, this.registerGate);
    this.connections.push(conn);
    return conn.asNative();
  }

  libvirtVersion(): number {
    return 9_000_000;
  }

  get last(): FakeConnection {
    const conn = this.connections.at(-1);
    if (!conn) throw new Error("no connection opened yet");
    return conn;
  }
}
