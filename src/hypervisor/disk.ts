// The disk model shared by the domain-XML inventory (hypervisor/) and the storage backends
// (storage/): what a domain's disk is, and which backend may snapshot it.

/** A Ceph monitor address as written in the domain XML (`<host name port>`). */
export interface CephMonitor {
  readonly host: string;
  readonly port?: number;
}

/** Where an RBD disk lives: `pool[/namespace]/image`, and how QEMU authenticates. */
export interface RbdSource {
  readonly pool: string;
  readonly namespace?: string;
  readonly image: string;
  readonly monitors: readonly CephMonitor[];
  readonly auth?: {
    readonly username: string;
    readonly secretUuid?: string;
    readonly secretUsage?: string;
  };
}

/** A local disk image file, snapshotted by libvirt as an external overlay. */
export interface FileSource {
  readonly path: string;
  readonly format?: string;
}

/** Which backend snapshots a disk, or why none can. */
export type DiskSnapshotPlan =
  | { readonly backend: "rbd"; readonly rbd: RbdSource }
  | { readonly backend: "libvirt-file"; readonly file: FileSource }
  | { readonly backend: "unsupported"; readonly reason: string };

/** One `<disk>` of a domain as vmsnap sees it. */
export interface Disk {
  /** `<target dev>`: `vda`, `sdb`, ... — the name users exclude disks by. */
  readonly target: string;
  readonly bus?: string;
  /** `<disk device>`: disk, cdrom, floppy, lun. */
  readonly device: string;
  /** `<disk type>`: network, file, block, volume, nvme, vhostuser, dir. */
  readonly type: string;
  readonly readonly: boolean;
  readonly shareable: boolean;
  readonly plan: DiskSnapshotPlan;
}
