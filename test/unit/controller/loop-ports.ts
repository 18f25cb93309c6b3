// Fake ports for driving the one reconcile loop in-process with the real VMSnapshot kind: an API
// client that can answer 409/500 and records every call, a libvirt that records what was done
// to each guest, storage, memory and guard ports that record their calls, and a clock that the
// test moves. Each fake keeps a journal so a test asserts the *calls* the controller made.
import { HypervisorError } from "../../../src/hypervisor/errors.ts";
import type { VMSnapshot, VMSnapshotStatus } from "../../../src/api/types.ts";
import { ConflictError, type ReconcileClient } from "../../../src/kube/object-client.ts";
import { objectKey } from "../../../src/kube/resource.ts";
import { Reconciler } from "../../../src/controller/reconciler.ts";
import { Admission } from "../../../src/snapshot/admission.ts";
import { SnapshotEffects } from "../../../src/snapshot/effects.ts";
import { snapshotKind } from "../../../src/snapshot/kind.ts";
import type {
  DiskSnapshotHandle,
  RemoveRequest,
  SnapshotRequest,
  StorageBackend,
} from "../../../src/storage/backend.ts";
import { StorageError } from "../../../src/storage/rbd/errors.ts";
import { StorageRegistry } from "../../../src/storage/registry.ts";
import type { SnapshotEvent } from "../../../src/machine/events.ts";
import type { Compensation } from "../../../src/machine/machine.ts";
import type { MachineState } from "../../../src/machine/step.ts";

/** Everything that happened, in order, as short strings: "api:patchStatus Frozen", "hv:fsFreeze". */
export type Journal = string[];

export const T0 = Date.parse("2026-12-02T10:00:00Z");

export function domainXml(name: string, image = `${name}-disk`): string {
  return `<domain type='qemu'><name>${name}</name><devices>
  <disk type='network' device='disk'><source protocol='rbd' name='pool/${image}'/><target dev='vda'/></disk>
  <channel type='unix'><target type='virtio' name='org.qemu.guest_agent.0'/></channel>
</devices></domain>`;
}

/** A fault the fake API server injects into the next matching call. */
export type ApiFault = "conflict" | "server-error";

export class FakeApi implements ReconcileClient<VMSnapshot> {
  readonly objects = new Map<string, VMSnapshot>();
  private readonly faults: Array<{ when: (status: VMSnapshotStatus) => boolean; fault: ApiFault }> =
    [];
  private version = 1;
  /** Returns status with its keys in reverse order, as a server with its own order would. */
  reorderKeys = false;

  constructor(private readonly journal: Journal) {}

  add(snapshot: VMSnapshot): VMSnapshot {
    const stored = { ...snapshot, metadata: { ...snapshot.metadata, resourceVersion: "1" } };
    this.objects.set(objectKey(stored), stored);
    return stored;
  }

  /** The next status patch for which `when` holds fails with `fault`. */
  failNext(fault: ApiFault, when: (status: VMSnapshotStatus) => boolean = () => true): void {
    this.faults.push({ when, fault });
  }

  /** Changes the stored object behind the controller's back (a label, say). */
  touch(key: string, change: (s: VMSnapshot) => VMSnapshot): void {
    const s = change(this.objects.get(key)!);
    this.objects.set(key, this.bump(s));
  }

  async get(namespace: string, name: string): Promise<VMSnapshot | undefined> {
    this.journal.push(`api:get ${name}`);
    return this.objects.get(`${namespace}/${name}`);
  }

  async patchStatus(object: VMSnapshot, status: VMSnapshotStatus): Promise<VMSnapshot> {
    this.journal.push(`api:patchStatus ${status.phase}`);
    const key = objectKey(object);
    const i = this.faults.findIndex((f) => f.when(status));
    if (i >= 0) {
      const fault = this.faults.splice(i, 1)[0]!.fault;
      if (fault === "server-error") throw new Error("HTTP 500: etcdserver: request timed out");
    }
    const stored = this.objects.get(key)!;
    if (stored.metadata.resourceVersion !== object.metadata.resourceVersion || i >= 0) {
      throw new ConflictError(`the object has been modified (${key})`);
    }
    const written = this.bump({ ...stored, status: this.reorder(structuredClone(status)) });
    this.objects.set(key, written);
    return written;
  }

  async setFinalizers(object: VMSnapshot, finalizers: string[]): Promise<VMSnapshot> {
    this.journal.push(`api:setFinalizers [${finalizers.join(",")}]`);
    const key = objectKey(object);
    const written = this.bump({
      ...this.objects.get(key)!,
      metadata: { ...this.objects.get(key)!.metadata, finalizers },
    });
    this.objects.set(key, written);
    return written;
  }

  statusWrites(journal: Journal): string[] {
    return journal.filter((line) => line.startsWith("api:patchStatus"));
  }

  private bump(s: VMSnapshot): VMSnapshot {
    return { ...s, metadata: { ...s.metadata, resourceVersion: String(++this.version) } };
  }

  private reorder<T extends object>(value: T): T {
    if (!this.reorderKeys || Array.isArray(value) || value === null) return value;
    const entries = Object.entries(value).reverse();
    return Object.fromEntries(
      entries.map(([k, v]) => [k, typeof v === "object" && v !== null ? this.reorder(v) : v]),
    ) as T;
  }
}

/** A libvirt with running guests whose freeze, thaw, pause and resume are recorded. */
export class FakeHypervisor {
  readonly frozen = new Set<string>();
  /** The RBD image each domain's vda points at now (default `<domain>-disk`). */
  readonly images = new Map<string, string>();
  readonly paused = new Set<string>();

  constructor(
    private readonly journal: Journal,
    readonly domains: Set<string>,
  ) {}

  async domainInfo(domain: string) {
    this.exists(domain);
    return {
      name: domain,
      uuid: `uuid-${domain}`,
      id: 1,
      state: this.paused.has(domain) ? ("paused" as const) : ("running" as const),
      reason: 1,
      active: true,
      persistent: true,
    };
  }

  async domainInfoByUUID(uuid: string) {
    return this.domainInfo(uuid.replace(/^uuid-/, ""));
  }

  /** No domain here carries an owner element: ownership is the test's tenancy policy's call. */
  async domainMetadata(domain: string): Promise<string | undefined> {
    this.exists(domain);
    return undefined;
  }

  async domainXml(domain: string): Promise<string> {
    this.exists(domain);
    return domainXml(domain, this.images.get(domain));
  }

  async guestPing(domain: string): Promise<void> {
    this.exists(domain);
  }

  async fsFreeze(domain: string): Promise<number> {
    this.exists(domain);
    this.journal.push(`hv:fsFreeze ${domain}`);
    this.frozen.add(domain);
    return 1;
  }

  async fsThaw(domain: string): Promise<number> {
    this.exists(domain);
    this.journal.push(`hv:fsThaw ${domain}`);
    this.frozen.delete(domain);
    return 1;
  }

  async freezeStatus(domain: string): Promise<"frozen" | "thawed"> {
    this.exists(domain);
    this.journal.push(`hv:freezeStatus ${domain}`);
    return this.frozen.has(domain) ? "frozen" : "thawed";
  }

  async suspend(domain: string): Promise<void> {
    this.journal.push(`hv:suspend ${domain}`);
    this.paused.add(domain);
  }

  async resume(domain: string): Promise<void> {
    this.journal.push(`hv:resume ${domain}`);
    this.paused.delete(domain);
  }

  private exists(domain: string): void {
    if (!this.domains.has(domain)) {
      throw new HypervisorError("Domain not found", {
        reason: "DomainNotFound",
        operation: "domainInfo",
        code: 42,
        domain: 10,
      });
    }
  }
}

/** Storage that records creates and removes and answers with a handle per disk. */
/** Storage faults a test can switch on. */
export interface StorageFaults {
  /**
   * prepare() moves the test clock on by this much and then fails after a little real time,
   * as an `rbd` call on a stalled OSD ends with its own process timeout.
   */
  prepareStallsAfterMs?: number;
  /** Runs inside create(), while the guest is frozen. */
  duringCreate?: () => void;
  /** verify() finds the group's members changed since the snapshot's prepare. */
  membershipChanged?: boolean;
  /** The domain UUID of every prepare, create and remove, in order. */
  readonly uuids?: Array<string | undefined>;
}

export function fakeStorage(
  journal: Journal,
  kind: "rbd" | "libvirt-file",
  faults: StorageFaults = {},
  clock: { now: number } = { now: 0 },
): StorageBackend {
  const real = kind === "rbd" ? "network" : "file";
  return {
    kind,
    diskOf: (handle) => ({
      target: handle.target,
      device: "disk",
      readonly: false,
      shareable: false,
      type: real,
      plan:
        kind === "rbd"
          ? {
              backend: "rbd",
              rbd: { pool: "pool", image: handle.source.split("/")[1]!, monitors: [] },
            }
          : { backend: "libvirt-file", file: { path: handle.source } },
    }),
    async prepare(request: SnapshotRequest) {
      journal.push(`${kind}:prepare ${request.name}`);
      faults.uuids?.push(request.domainUUID);
      if (faults.prepareStallsAfterMs !== undefined) {
        clock.now += faults.prepareStallsAfterMs;
        await new Promise((resolve) => setTimeout(resolve, 50));
        throw new Error("rbd: timed out (110)");
      }
    },
    async create(request: SnapshotRequest): Promise<DiskSnapshotHandle[]> {
      if (request.disks.length === 0) return [];
      journal.push(`${kind}:create ${request.name}`);
      faults.uuids?.push(request.domainUUID);
      faults.duringCreate?.();
      return request.disks.map((d) => {
        const source = d.plan.backend === "rbd" ? `pool/${d.plan.rbd.image}` : d.target;
        return { target: d.target, backend: kind, source, snapshot: `${source}@${request.name}` };
      });
    },
    async remove(request: RemoveRequest) {
      const sources = request.disks.map((d) =>
        d.plan.backend === "rbd" ? `${d.plan.rbd.pool}/${d.plan.rbd.image}` : d.target,
      );
      journal.push(`${kind}:remove ${request.name} ${sources.join(",")}`);
      faults.uuids?.push(request.domainUUID);
    },
    async verify(handles) {
      journal.push(`${kind}:verify ${handles.map((h) => h.snapshot).join(",")}`);
      if (faults.membershipChanged)
        throw new StorageError("MembershipChanged", "group pool/g now also holds pool/foreign");
    },
    async rollback() {
      throw new Error("not used");
    },
  };
}

export interface Bed {
  readonly journal: Journal;
  readonly api: FakeApi;
  readonly hv: FakeHypervisor;
  readonly reconciler: Reconciler<VMSnapshot, MachineState, SnapshotEvent, Compensation>;
  readonly clock: { now: number };
  /** While true, the thaw guard refuses to arm (a sidecar that is down). */
  readonly guard: { down: boolean };
  readonly storageFaults: StorageFaults;
  readonly effects: SnapshotEffects;
  readonly logs: Array<{ message: string; fields: Record<string, unknown> }>;
  snapshot(
    name: string,
    domain: string,
    memory?: boolean,
    spec?: Partial<VMSnapshot["spec"]>,
  ): VMSnapshot;
}

/** One in-process controller: the real loop, kind and effects over the fakes above. */
export function bed(domains: string[] = ["vm-a"]): Bed {
  const journal: Journal = [];
  const api = new FakeApi(journal);
  const hv = new FakeHypervisor(journal, new Set(domains));
  const clock = { now: T0 };
  const now = () => clock.now;
  const logs: Bed["logs"] = [];
  const guard = { down: false };
  const storageFaults: StorageFaults = { uuids: [] };
  const log = (message: string, fields: Record<string, unknown>) => logs.push({ message, fields });
  const effects: SnapshotEffects = new SnapshotEffects({
    hypervisor: hv,
    storage: new StorageRegistry([
      fakeStorage(journal, "rbd", storageFaults, clock),
      fakeStorage(journal, "libvirt-file", storageFaults, clock),
    ]),
    memory: {
      async save(request) {
        journal.push(`memory:save ${request.name}`);
        return { file: request.file, bytes: 1024 };
      },
      async remove(request) {
        journal.push(`memory:remove ${request.name}`);
      },
    },
    guard: {
      async arm(entry) {
        if (guard.down) throw new Error("connect ECONNREFUSED /run/vmsnap/guard.sock");
        journal.push(`guard:arm ${entry.domain}`);
      },
      async disarm() {
        journal.push(`guard:disarm`);
      },
    },
    admission: new Admission(4),
    memoryDir: "/nonexistent/memory",
    callTimeoutMs: 1_000,
    now,
    log,
  });
  const reconciler = new Reconciler({
    kind: snapshotKind(effects),
    read: (key) => api.objects.get(key),
    client: api,
    events: { record: (_o, _type, reason) => journal.push(`event:${reason}`) },
    now,
    log,
  });
  let serial = 0;
  return {
    journal,
    api,
    hv,
    clock,
    logs,
    guard,
    storageFaults,
    effects,
    reconciler,
    snapshot(name, domain, memory = false, spec = {}) {
      return api.add({
        apiVersion: "vmsnap.io/v1alpha1",
        kind: "VMSnapshot",
        metadata: { name, namespace: "ns", uid: `uid-${++serial}`, generation: 1 },
        spec: { source: { domain, node: "host-1" }, memory, ...spec },
      });
    },
  };
}
