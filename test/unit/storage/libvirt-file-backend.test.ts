// The libvirt file-disk backend against a small in-memory libvirt: which calls it makes, the
// snapshot XML it sends, how retries and leftovers are handled, and which requests it refuses
// before asking libvirt anything. The real behaviour of libvirt 9.0 is checked end to end in
// test/e2e/file-disk-backend.test.ts; this pins down the backend's own decisions.
import { expect } from "chai";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

import type { Disk } from "../../../src/hypervisor/disk.ts";
import { HypervisorError, type HypervisorErrorReason } from "../../../src/hypervisor/errors.ts";
import { SnapshotCreateFlags, SnapshotDeleteFlags } from "../../../src/hypervisor/flags.ts";
import { readSnapshot } from "../../../src/hypervisor/snapshot-read.ts";
import {
  LibvirtFileBackend,
  overlayPath,
  type LibvirtFilePort,
} from "../../../src/storage/libvirt-file/index.ts";

const fileDisk = (target: string, path: string): Disk => ({
  target,
  device: "disk",
  type: "file",
  readonly: false,
  shareable: false,
  plan: { backend: "libvirt-file", file: { path, format: "qcow2" } },
});
const rbdDisk = (target: string): Disk => ({
  target,
  device: "disk",
  type: "network",
  readonly: false,
  shareable: false,
  plan: { backend: "rbd", rbd: { pool: "vms", image: `web-${target}`, monitors: [] } },
});

interface FakeDisk {
  target: string;
  /** File disks: the chain, active file first. */
  chain?: string[];
}

function fail(reason: HypervisorErrorReason): HypervisorError {
  return new HypervisorError(reason, { reason, operation: "createSnapshot" });
}

/**
 * One domain as libvirt 9.0 behaves for these calls: an external snapshot puts an overlay on
 * top of each chosen disk (creating the file), deletion merges it back and deletes the file.
 */
class FakeLibvirt implements LibvirtFilePort {
  readonly calls: string[] = [];
  readonly snapshots = new Map<string, string>();
  exists = true;
  failDeleteWith?: HypervisorErrorReason;

  constructor(
    readonly domain: string,
    readonly disks: FakeDisk[],
  ) {}

  async domainXml(name: string, options?: { flags?: number }): Promise<string> {
    this.calls.push(`domainXml ${name}${options?.flags ? ` flags=${options.flags}` : ""}`);
    this.check(name);
    return `<domain><name>${name}</name><devices>${this.disks.map(diskXml).join("")}</devices></domain>`;
  }

  async listSnapshots(name: string): Promise<string[]> {
    this.calls.push(`listSnapshots ${name}`);
    this.check(name);
    return [...this.snapshots.keys()];
  }

  async snapshotXml(name: string, snapshot: string): Promise<string> {
    this.calls.push(`snapshotXml ${name} ${snapshot}`);
    this.check(name);
    const xml = this.snapshots.get(snapshot);
    if (xml === undefined) throw fail("SnapshotNotFound");
    return xml;
  }

  async createSnapshot(name: string, xml: string, flags = 0): Promise<string> {
    this.calls.push(`createSnapshot ${name} flags=${flags}`);
    this.check(name);
    const record = readSnapshot(xml);
    const before = `<domain><devices>${this.disks.map(diskXml).join("")}</devices></domain>`;
    for (const [target, overlay] of record.overlays) {
      if (existsSync(overlay)) throw fail("Unsupported"); // code 67: file exists
      writeFileSync(overlay, "qcow2 overlay", { mode: 0o600 });
      const disk = this.disks.find((d) => d.target === target)!;
      disk.chain = [overlay, ...disk.chain!];
    }
    this.snapshots.set(record.name, xml.replace("</domainsnapshot>", `${before}</domainsnapshot>`));
    this.lastSnapshotXml = xml;
    return record.name;
  }
  lastSnapshotXml = "";

  async deleteSnapshot(
    name: string,
    snapshot: string,
    flags = 0,
    options?: { timeoutMs?: number },
  ): Promise<void> {
    this.calls.push(
      `deleteSnapshot ${name} ${snapshot} flags=${flags} timeout=${options?.timeoutMs}`,
    );
    this.check(name);
    if (this.failDeleteWith) throw fail(this.failDeleteWith);
    const xml = this.snapshots.get(snapshot);
    if (xml === undefined) throw fail("SnapshotNotFound");
    // METADATA_ONLY leaves every file and chain as it is.
    if (!(flags & SnapshotDeleteFlags.MetadataOnly)) {
      for (const overlay of readSnapshot(xml).overlays.values()) {
        for (const disk of this.disks) disk.chain = disk.chain?.filter((f) => f !== overlay);
        rmSync(overlay, { force: true });
      }
    }
    this.snapshots.delete(snapshot);
  }

  private check(name: string): void {
    if (!this.exists || name !== this.domain) throw fail("DomainNotFound");
  }
}

function diskXml(disk: FakeDisk): string {
  if (!disk.chain) {
    return `<disk type='network' device='disk'><source protocol='rbd' name='vms/web-${disk.target}'/><target dev='${disk.target}'/></disk>`;
  }
  const [active, ...backing] = disk.chain;
  const nested = backing.reduceRight(
    (inner, file) => `<backingStore type='file'><source file='${file}'/>${inner}</backingStore>`,
    "<backingStore/>",
  );
  return `<disk type='file' device='disk'><driver name='qemu' type='qcow2'/><source file='${active}'/>${nested}<target dev='${disk.target}'/></disk>`;
}

async function rejection(promise: Promise<unknown>): Promise<HypervisorError> {
  const err = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err, "expected a HypervisorError").to.be.instanceOf(HypervisorError);
  return err as HypervisorError;
}

describe("libvirt file-disk backend", () => {
  let dir: string;
  let vda: string;
  let vdb: string;
  let libvirt: FakeLibvirt;
  let backend: LibvirtFileBackend;
  const N = "vmsnap-0b9e";

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), "vmsnap-file-backend-"));
    vda = join(dir, "web-root.qcow2");
    vdb = join(dir, "web-data.qcow2");
    libvirt = new FakeLibvirt("web", [
      { target: "vda", chain: [vda] },
      { target: "vdb", chain: [vdb] },
      { target: "vdc" },
    ]);
    backend = new LibvirtFileBackend({ hypervisor: libvirt, removeTimeoutMs: 1234 });
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  const request = (name = N, disks = [fileDisk("vda", vda), fileDisk("vdb", vdb)]) => ({
    domain: "web",
    name,
    disks,
  });

  describe("create", () => {
    it("takes one DISK_ONLY|ATOMIC snapshot of all file disks, every other disk snapshot='no'", async () => {
      const handles = await backend.create(request());
      expect(libvirt.calls).to.deep.equal([
        "listSnapshots web",
        "domainXml web",
        `createSnapshot web flags=${SnapshotCreateFlags.DiskOnly | SnapshotCreateFlags.Atomic}`,
      ]);
      expect(libvirt.lastSnapshotXml).to.not.match(/quiesce/i);
      const sent = readSnapshot(libvirt.lastSnapshotXml);
      expect([...sent.overlays]).to.deep.equal([
        ["vda", `${vda}.${N}.qcow2`],
        ["vdb", `${vdb}.${N}.qcow2`],
      ]);
      expect(libvirt.lastSnapshotXml).to.include(`<disk name="vdc" snapshot="no"/>`);
      expect(libvirt.lastSnapshotXml).to.include(`<memory snapshot="no"/>`);
      expect(handles).to.deep.equal([
        { target: "vda", backend: "libvirt-file", source: vda, snapshot: `web@${N}` },
        { target: "vdb", backend: "libvirt-file", source: vdb, snapshot: `web@${N}` },
      ]);
    });

    it("is a no-op when the snapshot exists, returning the same handles from its record", async () => {
      const first = await backend.create(request());
      libvirt.calls.length = 0;
      // A retry after a restart may see the disks on their overlays already: still the same.
      const retried = await backend.create(
        request(N, [fileDisk("vda", `${vda}.${N}.qcow2`), fileDisk("vdb", `${vdb}.${N}.qcow2`)]),
      );
      expect(retried).to.deep.equal(first);
      expect(libvirt.calls).to.deep.equal(["listSnapshots web", `snapshotXml web ${N}`]);
    });

    it("refuses a retry whose disks differ from the existing snapshot's", async () => {
      await backend.create(request());
      const err = await rejection(backend.create(request(N, [fileDisk("vda", vda)])));
      expect(err.reason).to.equal("InvalidArgument");
    });

    it("records the file each disk really uses, whatever the request said", async () => {
      const [handle] = await backend.create(request(N, [fileDisk("vda", "/stale/path.qcow2")]));
      expect(handle!.source).to.equal(vda);
    });

    it("names a snapshot's overlay after the original file when the disk already runs on an older overlay", async () => {
      await backend.create(request("vmsnap-old"));
      await backend.create(request("vmsnap-new"));
      expect([...readSnapshot(libvirt.lastSnapshotXml).overlays.values()]).to.deep.equal([
        `${vda}.vmsnap-new.qcow2`,
        `${vdb}.vmsnap-new.qcow2`,
      ]);
    });

    it("deletes a leftover overlay libvirt does not use, then creates", async () => {
      writeFileSync(`${vda}.${N}.qcow2`, "left by a daemon that died mid-create");
      await backend.create(request());
      expect(libvirt.snapshots.has(N)).to.equal(true);
      expect(libvirt.calls).to.include("domainXml web flags=2"); // the persistent definition too
    });

    it("never deletes an overlay file the domain still uses", async () => {
      const inUse = `${vda}.${N}.qcow2`;
      writeFileSync(inUse, "the disk's live data");
      libvirt.disks[0]!.chain = [inUse, vda]; // metadata lost, overlay still active
      const err = await rejection(backend.create(request()));
      expect(err.reason).to.equal("Unsupported"); // libvirt: file exists (67)
      expect(existsSync(inUse)).to.equal(true);
    });

    it("does nothing for a request without disks", async () => {
      expect(await backend.create(request(N, []))).to.deep.equal([]);
      expect(libvirt.calls).to.deep.equal([]);
    });

    it("refuses bad names, paths and non-file disks before asking libvirt anything", async () => {
      const cases: Array<[string, ReturnType<typeof request>, HypervisorErrorReason]> = [
        ["dot in name", request("vmsnap.1"), "InvalidArgument"],
        ["slash in name", request("a/b"), "InvalidArgument"],
        ["option-like name", request("-rf"), "InvalidArgument"],
        ["empty name", request(""), "InvalidArgument"],
        ["long name", request("a".repeat(101)), "InvalidArgument"],
        ["relative path", request(N, [fileDisk("vda", "web.qcow2")]), "InvalidArgument"],
        ["newline in path", request(N, [fileDisk("vda", "/v/a\nb.qcow2")]), "InvalidArgument"],
        ["disk twice", request(N, [fileDisk("vda", vda), fileDisk("vda", vdb)]), "InvalidArgument"],
        ["rbd disk", request(N, [rbdDisk("vdc")]), "Unsupported"],
      ];
      for (const [label, req, reason] of cases) {
        const err = await rejection(backend.create(req));
        expect(err.reason, label).to.equal(reason);
      }
      expect(libvirt.calls).to.deep.equal([]);
    });

    it("refuses a disk the domain does not have", async () => {
      const err = await rejection(backend.create(request(N, [fileDisk("vdz", vda)])));
      expect(err.reason).to.equal("InvalidArgument");
      expect(libvirt.snapshots.size).to.equal(0);
    });
  });

  describe("remove", () => {
    it("deletes the libvirt snapshot, which merges and deletes the overlays", async () => {
      await backend.create(request());
      libvirt.calls.length = 0;
      await backend.remove(request());
      expect(libvirt.calls).to.deep.equal([
        "listSnapshots web",
        `snapshotXml web ${N}`,
        "domainXml web", // does the domain still run on the snapshot's overlays?
        "domainXml web flags=2",
        `deleteSnapshot web ${N} flags=0 timeout=1234`, // merging may take long: its own deadline
      ]);
      expect(libvirt.snapshots.size).to.equal(0);
      expect(existsSync(`${vda}.${N}.qcow2`)).to.equal(false);
    });

    it("removes overlay files libvirt no longer references, even when the request names the overlays", async () => {
      await backend.create(request());
      const overlay = `${vda}.${N}.qcow2`;
      libvirt.snapshots.clear(); // metadata gone (deleted by hand) ...
      libvirt.disks[0]!.chain = [vda]; // ... and the disk back on its original file
      await backend.remove(request(N, [fileDisk("vda", overlay), fileDisk("vdb", vdb)]));
      expect(existsSync(overlay)).to.equal(false);
    });

    it("keeps an overlay file the domain still runs on", async () => {
      await backend.create(request());
      libvirt.snapshots.clear(); // metadata gone, but the disk still runs on the overlay
      await backend.remove(request());
      expect(existsSync(`${vda}.${N}.qcow2`)).to.equal(true);
    });

    it("succeeds when the snapshot is already gone, and when it vanishes meanwhile", async () => {
      await backend.remove(request());
      await backend.create(request());
      libvirt.failDeleteWith = "SnapshotNotFound";
      await backend.remove(request());
    });

    it("succeeds without touching files when the domain no longer exists", async () => {
      await backend.create(request());
      libvirt.exists = false;
      await backend.remove(request());
      expect(existsSync(`${vda}.${N}.qcow2`)).to.equal(true);
    });

    it("after an in-place restore re-pointed the disks, deletes only the metadata and the stale overlays, never the backing files", async () => {
      await backend.create(request());
      const [oldA, oldB] = [`${vda}.${N}.qcow2`, `${vdb}.${N}.qcow2`];
      // The restore: new overlays on the snapshot's backing files (the originals).
      const [newA, newB] = [`${vda}.vmrestore-1.qcow2`, `${vdb}.vmrestore-1.qcow2`];
      for (const f of [newA, newB]) writeFileSync(f, "restored overlay");
      for (const f of [vda, vdb]) writeFileSync(f, "the snapshot's content");
      libvirt.disks[0]!.chain = [newA, vda];
      libvirt.disks[1]!.chain = [newB, vdb];
      libvirt.calls.length = 0;
      await backend.remove(request());
      expect(libvirt.calls).to.include(
        `deleteSnapshot web ${N} flags=${SnapshotDeleteFlags.MetadataOnly} timeout=1234`,
      );
      expect([oldA, oldB].map(existsSync)).to.deep.equal([false, false]);
      expect([vda, vdb, newA, newB].map(existsSync)).to.deep.equal([true, true, true, true]);
    });

    it("after a restore, keeps a stale overlay that a later snapshot stands on", async () => {
      await backend.create(request());
      const older = `${vda}.${N}.qcow2`;
      // A later snapshot took the disks from the first snapshot's overlays onwards ...
      await backend.create(
        request("vmsnap-later", [fileDisk("vda", older), fileDisk("vdb", `${vdb}.${N}.qcow2`)]),
      );
      // ... then a restore of the first re-pointed both disks at new overlays on the originals.
      libvirt.disks[0]!.chain = [`${vda}.vmrestore-1.qcow2`, vda];
      libvirt.disks[1]!.chain = [`${vdb}.vmrestore-1.qcow2`, vdb];
      await backend.remove(request());
      expect(existsSync(older), "the later snapshot's content").to.equal(true);
    });

    it("passes other failures on, typed", async () => {
      await backend.create(request());
      libvirt.failDeleteWith = "Timeout";
      expect((await rejection(backend.remove(request()))).reason).to.equal("Timeout");
    });
  });

  it("refuses rollback as Unsupported without calling libvirt", async () => {
    const err = await rejection(backend.rollback(request()));
    expect(err).to.include({ reason: "Unsupported", operation: "restore" });
    expect(libvirt.calls).to.deep.equal([]);
  });
});

describe("overlay placement", () => {
  it("puts the overlay next to the disk file as <file>.<name>.qcow2", () => {
    expect(overlayPath("/vms/web.qcow2", "vmsnap-1", new Set())).to.equal(
      "/vms/web.qcow2.vmsnap-1.qcow2",
    );
    expect(overlayPath("/vms/web.img", "vmsnap-1", new Set())).to.equal(
      "/vms/web.img.vmsnap-1.qcow2",
    );
  });

  it("drops the suffix of an overlay of a snapshot the domain has, so names do not grow", () => {
    expect(overlayPath("/v/web.qcow2.vmsnap-1.qcow2", "vmsnap-2", new Set(["vmsnap-1"]))).to.equal(
      "/v/web.qcow2.vmsnap-2.qcow2",
    );
    // The snapshot's own overlay maps to itself, so remove finds it from either path.
    expect(overlayPath("/v/web.qcow2.vmsnap-2.qcow2", "vmsnap-2", new Set())).to.equal(
      "/v/web.qcow2.vmsnap-2.qcow2",
    );
  });

  it("keeps a dotted file name whose middle part is no snapshot of the domain", () => {
    // /v/vm.a.qcow2 and /v/vm.b.qcow2 must not both become /v/vm.<name>.qcow2.
    expect(overlayPath("/v/vm.a.qcow2", "s", new Set(["x"]))).to.equal("/v/vm.a.qcow2.s.qcow2");
    expect(overlayPath("/v/vm.b.qcow2", "s", new Set(["x"]))).to.equal("/v/vm.b.qcow2.s.qcow2");
  });
});
