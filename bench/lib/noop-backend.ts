// A storage backend that does no I/O, for benchmarks only (bench-main.ts `--bench-storage noop`):
// it isolates the controller's own cost (API writes, CPU, memory) from Ceph's.
import type {
  DiskSnapshotHandle,
  SnapshotRequest,
  StorageBackend,
} from "../../src/storage/backend.ts";
import type { Disk } from "../../src/hypervisor/disk.ts";

export class NoopBackend implements StorageBackend {
  constructor(readonly kind: "rbd" | "libvirt-file") {}

  async create(request: SnapshotRequest): Promise<DiskSnapshotHandle[]> {
    return request.disks.map((disk) => ({
      target: disk.target,
      backend: this.kind,
      source: disk.target,
      snapshot: `noop@${request.name}`,
    }));
  }

  async remove(): Promise<void> {}

  diskOf(handle: DiskSnapshotHandle): Disk {
    return {
      target: handle.target,
      device: "disk",
      readonly: false,
      shareable: false,
      type: "file",
      plan: { backend: "libvirt-file", file: { path: handle.source } },
    };
  }

  async rollback(): Promise<void> {}
}
