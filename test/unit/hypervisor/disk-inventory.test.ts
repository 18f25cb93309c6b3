// The disk inventory read from real-shaped domain XML (test/fixtures/domains/): which backend
// snapshots each disk, with the source details the backends need, or why none can.
import { expect } from "chai";
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";

import { parseDisks } from "../../../src/hypervisor/disk-inventory.ts";
import type { Disk } from "../../../src/hypervisor/disk.ts";

function inventory(fixture: string): Disk[] {
  const path = fileURLToPath(new URL(`../../fixtures/domains/${fixture}`, import.meta.url));
  return parseDisks(readFileSync(path, "utf8"));
}

function unsupportedReason(disk: Disk | undefined): string {
  expect(disk?.plan.backend).to.equal("unsupported");
  return disk?.plan.backend === "unsupported" ? disk.plan.reason : "";
}

describe("disk inventory", () => {
  it("reads an RBD disk with several monitors and cephx auth by secret UUID", () => {
    expect(inventory("rbd-cephx-monitors.xml")).to.deep.equal([
      {
        target: "vda",
        bus: "virtio",
        device: "disk",
        type: "network",
        readonly: false,
        shareable: false,
        plan: {
          backend: "rbd",
          rbd: {
            pool: "vms",
            image: "web-1-root",
            monitors: [
              { host: "10.0.0.1", port: 6789 },
              { host: "10.0.0.2", port: 6789 },
              { host: "ceph-mon-3.example" },
            ],
            auth: { username: "libvirt", secretUuid: "8f0e2b9a-3c55-4a35-b0a4-2a0f9d7d2b11" },
          },
        },
      },
    ]);
  });

  it("splits pool/namespace/image and reads auth inside <source> with a secret usage", () => {
    const [disk] = inventory("rbd-namespace.xml");
    expect(disk?.plan).to.deep.equal({
      backend: "rbd",
      rbd: {
        pool: "tenants",
        namespace: "acme",
        image: "db-data",
        monitors: [{ host: "192.168.10.5", port: 3300 }],
        auth: { username: "acme", secretUsage: "client.acme secret" },
      },
    });
  });

  it("plans a qcow2 file disk for libvirt external snapshots, with path and format", () => {
    expect(inventory("qcow2-file.xml")).to.deep.equal([
      {
        target: "vda",
        bus: "virtio",
        device: "disk",
        type: "file",
        readonly: false,
        shareable: false,
        plan: {
          backend: "libvirt-file",
          file: { path: "/var/lib/libvirt/images/app.qcow2", format: "qcow2" },
        },
      },
    ]);
  });

  it("plans a raw file disk on a SCSI bus the same way", () => {
    const [disk] = inventory("raw-file.xml");
    expect(disk).to.include({ target: "sda", bus: "scsi", type: "file" });
    expect(disk?.plan).to.deep.equal({
      backend: "libvirt-file",
      file: { path: "/srv/vm/data.img", format: "raw" },
    });
  });

  it("leaves CD-ROMs out, with or without media, saying to exclude them", () => {
    const disks = inventory("cdrom.xml");
    expect(disks.map((d) => [d.target, d.device, d.readonly])).to.deep.equal([
      ["sdc", "cdrom", true],
      ["sdd", "cdrom", true],
    ]);
    for (const disk of disks) expect(unsupportedReason(disk)).to.match(/cdrom.*exclude/);
  });

  it("refuses a read-only disk even though it is a file disk", () => {
    const [disk] = inventory("readonly.xml");
    expect(disk).to.include({ target: "vdc", readonly: true, type: "file", device: "disk" });
    expect(unsupportedReason(disk)).to.match(/read-only/);
  });

  it("refuses a block device and names it", () => {
    const [disk] = inventory("block-device.xml");
    expect(disk).to.include({ target: "vdb", type: "block" });
    expect(unsupportedReason(disk)).to.match(
      /block disks are not supported.*\/dev\/mapper\/vg0-vm--data/,
    );
  });

  it("refuses network disks that are not rbd: nbd", () => {
    const [disk] = inventory("nbd.xml");
    expect(disk).to.include({ target: "vdd", type: "network" });
    expect(unsupportedReason(disk)).to.match(/over nbd/);
  });

  it("refuses iSCSI disks and LUN passthrough", () => {
    const [lun, disk] = inventory("iscsi.xml");
    expect(lun).to.include({ target: "sdb", device: "lun" });
    expect(unsupportedReason(lun)).to.match(/lun device/);
    expect(unsupportedReason(disk)).to.match(/over iscsi/);
  });

  it("returns no disks for a domain without any", () => {
    expect(inventory("no-disks.xml")).to.deep.equal([]);
  });

  describe("a live domain with mixed disks", () => {
    const disks = inventory("mixed.xml");
    const byTarget = (target: string) => disks.find((d) => d.target === target);

    it("keeps document order and sees every disk", () => {
      expect(disks.map((d) => d.target)).to.deep.equal([
        "vda",
        "vdb",
        "vdc",
        "vdd",
        "vde",
        "vdf",
        "vdg",
      ]);
    });

    it("reads auth placed directly under <disk> (older libvirt) for rbd", () => {
      const plan = byTarget("vda")?.plan;
      expect(plan).to.deep.equal({
        backend: "rbd",
        rbd: {
          pool: "vms",
          image: "mixed-root",
          monitors: [{ host: "10.1.0.1", port: 6789 }],
          auth: { username: "admin", secretUuid: "0f9b3f0e-36c5-4a9b-93f6-1d2f9d1c7a10" },
        },
      });
    });

    it("plans a file disk whose live XML carries index attributes and backingStore", () => {
      expect(byTarget("vdb")?.plan).to.deep.equal({
        backend: "libvirt-file",
        file: { path: "/var/lib/libvirt/images/mixed-scratch.qcow2", format: "qcow2" },
      });
    });

    it("refuses a shareable file disk, whose other writers would write into the snapshot", () => {
      expect(byTarget("vdc")?.shareable).to.equal(true);
      expect(unsupportedReason(byTarget("vdc"))).to.match(/shareable/);
    });

    it("still snapshots a shareable rbd disk through Ceph, reporting it as shareable", () => {
      expect(byTarget("vdd")).to.include({ shareable: true });
      expect(byTarget("vdd")?.plan.backend).to.equal("rbd");
    });

    it("refuses pool volumes, rbd snapshots as sources, and rbd names without a pool", () => {
      expect(unsupportedReason(byTarget("vde"))).to.match(/volume disks.*extra\.qcow2/);
      expect(unsupportedReason(byTarget("vdf"))).to.match(/is a snapshot/);
      // "0123" stays a string (no number parsing) and is rejected as lacking a pool.
      expect(unsupportedReason(byTarget("vdg"))).to.match(/"0123" is not pool\/image/);
    });
  });

  it("rejects a document that is not a domain", () => {
    expect(() => parseDisks("<network><name>default</name></network>")).to.throw(/no <domain>/);
  });
});
