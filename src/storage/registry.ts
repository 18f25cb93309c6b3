// The storage backends the agent was built with, as one object: it splits a snapshot's disks by
// the backend that claims them (the inventory's `plan.backend`) and calls each backend with its
// own disks. The controller asks the registry, never a backend by name, so a third backend is
// a new StorageBackend handed to the registry in main.ts.
import type { Disk } from "../hypervisor/disk.ts";
import type {
  DiskSnapshotHandle,
  RestoredDiskHandle,
  SnapshotRequest,
  StorageBackend,
  StoredDefinition,
} from "./backend.ts";

/** Whose snapshot: the domain (its name, and its UUID as pinned) and the snapshot's name. */
export type SnapshotTarget = Omit<SnapshotRequest, "disks">;

export class StorageRegistry {
  constructor(readonly backends: readonly StorageBackend[]) {}

  /** Prepares every backend that has disks here (before the freeze). */
  async prepare(target: SnapshotTarget, disks: readonly Disk[]): Promise<void> {
    for (const [backend, request] of this.requests(target, disks)) {
      await backend.prepare?.(request);
    }
  }

  /** Snapshots every disk, each backend's at once and all backends in parallel. */
  async create(target: SnapshotTarget, disks: readonly Disk[]): Promise<DiskSnapshotHandle[]> {
    const made = await Promise.all(
      this.requests(target, disks).map(([backend, request]) => backend.create(request)),
    );
    return made.flat();
  }

  /**
   * Removes the snapshot `target.name`: what status `recorded`, by the names it records, and
   * what the attempt on `attempted` disks may have made beyond that. Each backend succeeds when
   * it is already gone.
   */
  async remove(
    target: SnapshotTarget,
    recorded: readonly DiskSnapshotHandle[],
    attempted: readonly Disk[],
  ): Promise<void> {
    const disks = uniqueDisks([...this.disksOf(recorded), ...attempted]);
    for (const [backend, request] of this.requests(target, disks)) {
      await backend.remove({
        ...request,
        recorded: recorded.filter((h) => h.backend === backend.kind),
      });
    }
  }

  /** Checks with each backend that its recorded snapshots hold exactly their disks. */
  async verify(handles: readonly DiskSnapshotHandle[]): Promise<void> {
    for (const [backend, mine] of this.byBackend(handles)) await backend.verify?.(mine);
  }

  /** The disks recorded handles stand for, by the backend that made each. */
  disksOf(handles: readonly DiskSnapshotHandle[]): Disk[] {
    return handles.map((handle) => this.backendOf(handle).diskOf(handle));
  }

  /** Reverts every recorded disk in place, backend by backend (the domain is stopped). */
  async revert(
    name: string,
    handles: readonly DiskSnapshotHandle[],
  ): Promise<RestoredDiskHandle[]> {
    const restored: RestoredDiskHandle[] = [];
    for (const [backend, mine] of this.byBackend(handles)) {
      if (!backend.revert)
        throw new Error(`storage backend "${backend.kind}" cannot restore in place`);
      restored.push(...(await backend.revert({ name, handles: mine })));
    }
    return restored;
  }

  /** Copies every recorded disk for the new domain `newDomain`, backend by backend. */
  async copy(
    name: string,
    handles: readonly DiskSnapshotHandle[],
    newDomain: string,
  ): Promise<RestoredDiskHandle[]> {
    const restored: RestoredDiskHandle[] = [];
    for (const [backend, mine] of this.byBackend(handles)) {
      if (!backend.copy) throw new Error(`storage backend "${backend.kind}" cannot copy disks`);
      restored.push(...(await backend.copy({ name, handles: mine, newDomain })));
    }
    return restored;
  }

  /**
   * Keeps the snapshot's domain definition with its disks, by the first backend (in the agent's
   * order: RBD first, which every node reaches) that has disks in it and can keep one. Returns
   * which backend kept it and where; undefined when none can.
   */
  async storeDefinition(
    name: string,
    handles: readonly DiskSnapshotHandle[],
    xml: string,
  ): Promise<StoredDefinition | undefined> {
    const home = this.definitionHome(handles);
    if (!home) return undefined;
    const [backend, handle] = home;
    const location = await backend.storeDefinition!({ name, handle, xml });
    return { backend: backend.kind, location };
  }

  /** The definition `storeDefinition` kept for snapshot `name` with `handles`, if any. */
  async readDefinition(
    name: string,
    handles: readonly DiskSnapshotHandle[],
  ): Promise<string | undefined> {
    const home = this.definitionHome(handles);
    return home ? home[0].readDefinition?.({ name, handle: home[1] }) : undefined;
  }

  /** Removes the definition kept for snapshot `name`; succeeds when there is none. */
  async removeDefinition(name: string, handles: readonly DiskSnapshotHandle[]): Promise<void> {
    const home = this.definitionHome(handles);
    if (home) await home[0].removeDefinition?.({ name, handle: home[1] });
  }

  /** Who keeps the definition and with which disk: chosen from the recorded handles alone, so
   *  store, read and remove agree without recording more, also after a restart. */
  private definitionHome(
    handles: readonly DiskSnapshotHandle[],
  ): [StorageBackend, DiskSnapshotHandle] | undefined {
    const home = this.byBackend(handles).find(([backend]) => backend.storeDefinition !== undefined);
    if (!home) return undefined;
    const [backend, mine] = home;
    return [backend, [...mine].sort((a, b) => a.target.localeCompare(b.target))[0]!];
  }

  private byBackend(
    handles: readonly DiskSnapshotHandle[],
  ): Array<[StorageBackend, DiskSnapshotHandle[]]> {
    for (const handle of handles) this.backendOf(handle);
    return this.backends
      .map((b): [StorageBackend, DiskSnapshotHandle[]] => [
        b,
        handles.filter((h) => h.backend === b.kind),
      ])
      .filter(([, mine]) => mine.length > 0);
  }

  private backendOf(handle: DiskSnapshotHandle): StorageBackend {
    const backend = this.backends.find((b) => b.kind === handle.backend);
    if (!backend) throw new Error(`no storage backend "${handle.backend}" in this agent`);
    return backend;
  }

  private requests(
    target: SnapshotTarget,
    disks: readonly Disk[],
  ): Array<[StorageBackend, SnapshotRequest]> {
    return this.backends
      .map((backend): [StorageBackend, SnapshotRequest] => [
        backend,
        { ...target, disks: disks.filter((d) => d.plan.backend === backend.kind) },
      ])
      .filter(([, request]) => request.disks.length > 0);
  }
}

/**
 * Each disk once by backend and target, the first kept: a recorded handle names the image that
 * was really snapshotted, even when the domain's disk of that target points elsewhere now.
 */
function uniqueDisks(disks: readonly Disk[]): Disk[] {
  const seen = new Set<string>();
  return disks.filter((d) => {
    const key = `${d.plan.backend}:${d.target}`;
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}
