// A storage backend that does no I/O, for benchmarks only (bench-main.ts `--bench-storage noop`):
// it isolates the controller's own cost (API writes, CPU, memory) from Ceph's.
import type {
  DiskSnapshotHandle,
  SnapshotRequest,
  StorageBackend,
} from "../../src/storage/backend.ts";
import type { Disk } from "../../src/hypervisor/disk.ts";
import { fileDiskOf } from "../../src/storage/libvirt-file/index.ts";

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

  /** Any handle stands for a file disk here: nothing was made that removal would look for. */
  diskOf(handle: DiskSnapshotHandle): Disk {
    return fileDiskOf(handle);
  }

  async rollback(): Promise<void> {}
}
