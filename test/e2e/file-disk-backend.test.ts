// The libvirt file-disk backend and the memory snapshot against a real libvirtd 9.0 and a real
// QEMU guest with two qcow2 disks (and an RBD disk when a Ceph cluster can be started): one
// atomic external snapshot of both file disks while the guest is frozen, a backing file that is
// a clean ext4 holding exactly the writes before the freeze, a no-op retry, a VM snapshot taken
// the controller's way (freeze, pause, disks, memory, resume, thaw), and removal of both in the
// awkward order (the older snapshot below the newer one first), down to what is left on disk.
import { expect } from "chai";
import { execFile } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, readdirSync, readFileSync, rmSync, statSync } from "node:fs";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { promisify } from "node:util";

import { Hypervisor } from "../../src/hypervisor/connection.ts";
import { parseDisks } from "../../src/hypervisor/disk-inventory.ts";
import type { Disk } from "../../src/hypervisor/disk.ts";
import {
  memorySnapshotName,
  removeMemory,
  saveMemory,
} from "../../src/hypervisor/memory-snapshot.ts";
import { readSnapshot, referencedFiles } from "../../src/hypervisor/snapshot-read.ts";
import { HypervisorError } from "../../src/hypervisor/errors.ts";
import type { DiskSnapshotHandle, SnapshotRequest } from "../../src/storage/backend.ts";
import { LibvirtFileBackend } from "../../src/storage/libvirt-file/index.ts";
import { getCephCluster } from "../support/ceph/cluster.ts";
import {
  type Guest,
  createRbdGuestDisk,
  guestImage,
  launchGuest,
  sequenceGaps,
  writerFileRecords,
  type WriterFileRecord,
} from "../support/guest/index.ts";
import {
  SYSTEM_URI,
  domainState,
  fsFreeze,
  fsThaw,
  useLibvirtd,
  virsh,
} from "../support/libvirt/libvirtd.ts";
import { guestWriterLog } from "../support/e2e/writer.ts";

const run = promisify(execFile);
const BOOT_TIMEOUT_MS = 120_000;
const S1 = "vmsnap-1f0c2a44-0000-4000-8000-000000000001";
const S2 = "vmsnap-1f0c2a44-0000-4000-8000-000000000002";

/** Waits until the disk's writer has printed `count` records after seq `after`; returns the last. */
async function waitForSeq(guest: Guest, disk: string, after: number, count = 3): Promise<number> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    const last = guest.writerRecords(disk).at(-1)?.seq ?? 0;
    if (last >= after + count) return last;
    if (Date.now() > deadline) throw new Error(`writer on ${disk} stuck at seq ${last}`);
    await sleep(100);
  }
}

/** The ext4 filesystem in a qcow2 file (-U: QEMU holds it open) as a raw image to check. */
async function toRaw(qcow2: string, raw: string): Promise<void> {
  await run("qemu-img", ["convert", "-U", "-f", "qcow2", "-O", "raw", qcow2, raw], {
    timeout: 120_000,
  });
}

/** `e2fsck -fn`: exit 0 only for a filesystem with nothing to fix. */
async function fsckClean(raw: string): Promise<{ clean: boolean; output: string }> {
  try {
    const { stdout, stderr } = await run("e2fsck", ["-fn", raw], { timeout: 60_000 });
    return { clean: true, output: stdout + stderr };
  } catch (err) {
    const e = err as { stdout?: string; stderr?: string };
    return { clean: false, output: `${e.stdout ?? ""}${e.stderr ?? ""}` };
  }
}

async function ext4Features(raw: string): Promise<string> {
  const { stdout } = await run("dumpe2fs", ["-h", raw], { timeout: 60_000 });
  return /^Filesystem features:\s*(.*)$/m.exec(stdout)?.[1] ?? "";
}

async function writerLogInImage(raw: string): Promise<WriterFileRecord[]> {
  const { stdout } = await run("debugfs", ["-R", "cat /vmsnap-writer.log", raw], {
    timeout: 60_000,
  });
  return writerFileRecords(stdout);
}

function sha256(path: string): string {
  return createHash("sha256").update(readFileSync(path)).digest("hex");
}

/** target → [source file, its backing file, ...] of the running domain. */
async function chains(hv: Hypervisor, domain: string): Promise<Record<string, string[]>> {
  const xml = await hv.domainXml(domain);
  const out: Record<string, string[]> = {};
  for (const disk of parseDisks(xml)) {
    if (disk.plan.backend !== "libvirt-file") continue;
    // Each <disk> element in document order: its source and the nested backing sources.
    const element = xml.split("<disk ").find((d) => d.includes(`dev='${disk.target}'`)) ?? "";
    out[disk.target] = [...element.matchAll(/<source file='([^']+)'/g)].map((m) => m[1]!);
  }
  return out;
}

function files(dir: string): string[] {
  return readdirSync(dir)
    .filter((f) => f !== "console.log")
    .sort();
}

describe("libvirt file-disk backend on a real libvirtd + QEMU guest", function () {
  let guest: Guest;
  let hv: Hypervisor;
  let backend: LibvirtFileBackend;
  let disks: Disk[];
  let fileDisks: Disk[];
  let rbdTarget: string | undefined;
  let originals: Record<string, string>;
  const request = (name: string): SnapshotRequest => ({
    domain: guest.name,
    name,
    disks: fileDisks,
  });

  before(async function () {
    this.timeout(600_000); // first run on a machine builds the guest (and maybe starts Ceph)
    await useLibvirtd();
    await guestImage();
    let rbdDisks: Awaited<ReturnType<typeof createRbdGuestDisk>>[] = [];
    try {
      rbdDisks = [await createRbdGuestDisk(await getCephCluster())];
    } catch (err) {
      console.log(
        `      (no Ceph cluster, testing without an RBD disk: ${String(err).split("\n")[0]})`,
      );
    }
    guest = await launchGuest({ label: "file-backend", fileDisks: 2, rbdDisks });
    await guest.waitForAgent(BOOT_TIMEOUT_MS);
    hv = await Hypervisor.open(SYSTEM_URI, { callTimeoutMs: 60_000 });
    backend = new LibvirtFileBackend({ hypervisor: hv, createTimeoutMs: 30_000 });
    disks = parseDisks(await hv.domainXml(guest.name));
    fileDisks = disks.filter((d) => d.plan.backend === "libvirt-file");
    rbdTarget = disks.find((d) => d.plan.backend === "rbd")?.target;
    originals = Object.fromEntries(
      fileDisks.map((d) => [d.target, d.plan.backend === "libvirt-file" ? d.plan.file.path : ""]),
    );
    expect(fileDisks.map((d) => d.target)).to.deep.equal(["vda", "vdb"]);
    console.log(
      `      guest disks: ${disks.map((d) => `${d.target} ${d.plan.backend}`).join(", ")}`,
    );
  });

  after(async () => {
    await hv?.close();
    await guest?.remove();
  });

  describe("create", () => {
    let handles: DiskSnapshotHandle[];
    let seqAtFreeze: Record<string, number>;

    it("snapshots both file disks in one atomic external snapshot while the guest is frozen", async () => {
      await waitForSeq(guest, "vda", 0);
      await waitForSeq(guest, "vdb", 0);
      const frozen = await fsFreeze(guest.name);
      expect(frozen).to.equal(disks.length); // every disk's filesystem, the RBD one included
      seqAtFreeze = {
        vda: guest.writerRecords("vda").at(-1)!.seq,
        vdb: guest.writerRecords("vdb").at(-1)!.seq,
      };
      const started = performance.now();
      try {
        handles = await backend.create(request(S1));
      } finally {
        const ms = performance.now() - started;
        await fsThaw(guest.name);
        console.log(`      create, 2 file disks: ${ms.toFixed(0)} ms`);
      }

      expect(handles).to.deep.equal(
        ["vda", "vdb"].map((target) => ({
          target,
          backend: "libvirt-file",
          source: originals[target],
          snapshot: `${guest.name}@${S1}`,
        })),
      );
      expect(await hv.listSnapshots(guest.name)).to.deep.equal([S1]);
      const record = readSnapshot(await hv.snapshotXml(guest.name, S1));
      expect([...record.overlays.keys()]).to.deep.equal(["vda", "vdb"]);
      const snapshotXml = await hv.snapshotXml(guest.name, S1);
      expect(snapshotXml).to.match(/<state>disk-snapshot<\/state>/);
      if (rbdTarget) expect(snapshotXml).to.include(`<disk name='${rbdTarget}' snapshot='no'/>`);

      // Each file disk now runs on its overlay, whose backing file is the original.
      expect(await chains(hv, guest.name)).to.deep.equal({
        vda: [`${originals.vda}.${S1}.qcow2`, originals.vda],
        vdb: [`${originals.vdb}.${S1}.qcow2`, originals.vdb],
      });
      // The RBD disk is untouched: same image, no overlay.
      const rbdNow = parseDisks(await hv.domainXml(guest.name)).find((d) => d.target === rbdTarget);
      expect(rbdNow?.plan).to.deep.equal(disks.find((d) => d.target === rbdTarget)?.plan);
      expect(await domainState(guest.name)).to.equal("running");
    });

    it("leaves the guest running and writing into the overlays; the backing files stay as they were", async () => {
      const backingHashes = fileDisks.map((d) => sha256(originals[d.target]!));
      const after = await waitForSeq(guest, "vda", seqAtFreeze.vda! + 2, 5);
      await waitForSeq(guest, "vdb", seqAtFreeze.vdb! + 2, 5);
      expect(fileDisks.map((d) => sha256(originals[d.target]!))).to.deep.equal(backingHashes);
      const log = await guestWriterLog(guest, "vda");
      expect(sequenceGaps(log)).to.deep.equal([]);
      expect(log.at(-1)!.seq).to.be.at.least(after);
      // The new writes landed in the overlay: it holds data clusters of its own.
      const { stdout } = await run("qemu-img", [
        "map",
        "-U",
        "--output=json",
        `${originals.vda}.${S1}.qcow2`,
      ]);
      const own = (JSON.parse(stdout) as Array<{ depth: number; data: boolean }>).filter(
        (e) => e.depth === 0 && e.data,
      );
      expect(own.length).to.be.above(0);
    });

    it("leaves in each backing file a clean ext4 holding exactly the writes before the freeze", async function () {
      this.timeout(300_000);
      for (const { target } of fileDisks) {
        const raw = join(guest.workDir, `${target}.check.raw`);
        try {
          await toRaw(originals[target]!, raw);
          const fsck = await fsckClean(raw);
          expect(fsck.clean, `e2fsck -fn of ${target}'s backing file:\n${fsck.output}`).to.equal(
            true,
          );
          expect(await ext4Features(raw)).to.not.include("needs_recovery");
          const log = await writerLogInImage(raw);
          expect(log[0]?.seq).to.equal(1);
          expect(sequenceGaps(log)).to.deep.equal([]);
          // Everything printed before the freeze is there; at most the one write that was
          // already past its fsync when the freeze landed comes on top; nothing after.
          const last = log.at(-1)!.seq;
          expect(last).to.be.within(seqAtFreeze[target]!, seqAtFreeze[target]! + 1);
          expect(guest.writerRecords(target).at(-1)!.seq).to.be.above(last + 1);
        } finally {
          rmSync(raw, { force: true });
        }
      }
    });

    it("is a no-op when retried: same handles, no second snapshot, no new file", async () => {
      const before = { files: files(guest.workDir), chains: await chains(hv, guest.name) };
      expect(await backend.create(request(S1))).to.deep.equal(handles);
      expect(await hv.listSnapshots(guest.name)).to.deep.equal([S1]);
      expect(files(guest.workDir)).to.deep.equal(before.files);
      expect(await chains(hv, guest.name)).to.deep.equal(before.chains);
    });

    it("refuses rollback with a typed Unsupported error and changes nothing", async () => {
      const err = await backend.rollback(request(S1)).catch((e: unknown) => e);
      expect(err).to.be.instanceOf(HypervisorError).and.include({ reason: "Unsupported" });
      expect(await hv.listSnapshots(guest.name)).to.deep.equal([S1]);
    });
  });

  describe("a VM snapshot the controller's way, then removal", () => {
    let memoryFile: string;

    it("saves 128 MiB of RAM to a 0600 file while the vCPUs are paused; the guest runs on after resume", async () => {
      memoryFile = join(guest.workDir, `${S2}.mem`);
      const seq = await waitForSeq(guest, "vda", 0, 1);
      await fsFreeze(guest.name);
      let createMs = 0;
      let saveMs = 0;
      let image: Awaited<ReturnType<typeof saveMemory>>;
      try {
        await virsh(["suspend", guest.name]);
        const pausedAt = performance.now();
        try {
          // Disks of this request come from a fresh inventory: they now run on S1's overlays.
          const current = parseDisks(await hv.domainXml(guest.name)).filter(
            (d) => d.plan.backend === "libvirt-file",
          );
          let t = performance.now();
          await backend.create({ domain: guest.name, name: S2, disks: current });
          createMs = performance.now() - t;
          t = performance.now();
          image = await saveMemory(hv, {
            domain: guest.name,
            name: S2,
            file: memoryFile,
            diskTargets: disks.map((d) => d.target),
            timeoutMs: 30_000,
          });
          saveMs = performance.now() - t;
          // libvirt leaves a paused domain paused: resuming is the controller's job.
          expect(await domainState(guest.name)).to.equal("paused");
        } finally {
          await virsh(["resume", guest.name]);
          console.log(
            `      VM snapshot: disks ${createMs.toFixed(0)} ms, memory ${saveMs.toFixed(0)} ms, ` +
              `vCPUs paused ${(performance.now() - pausedAt).toFixed(0)} ms`,
          );
        }
      } finally {
        await fsThaw(guest.name);
      }

      const mode = statSync(memoryFile).mode & 0o777;
      expect(mode.toString(8)).to.equal("600");
      expect(image!.bytes).to.equal(statSync(memoryFile).size);
      // QEMU's migration stream of a 128 MiB guest: less than RAM plus device state, far more
      // than nothing (the kernel and page cache fill much of it).
      expect(image!.bytes).to.be.within(16 * 1024 * 1024, 144 * 1024 * 1024);
      console.log(`      memory image: ${(image!.bytes / 1024 / 1024).toFixed(1)} MiB`);

      expect((await hv.listSnapshots(guest.name)).sort()).to.deep.equal(
        [S1, S2, memorySnapshotName(S2)].sort(),
      );
      const memory = await hv.snapshotXml(guest.name, memorySnapshotName(S2));
      for (const d of disks) expect(memory).to.include(`<disk name='${d.target}' snapshot='no'/>`);
      // S2's overlays are named after the original files, not after S1's overlays.
      expect(await chains(hv, guest.name)).to.deep.equal({
        vda: [`${originals.vda}.${S2}.qcow2`, `${originals.vda}.${S1}.qcow2`, originals.vda],
        vdb: [`${originals.vdb}.${S2}.qcow2`, `${originals.vdb}.${S1}.qcow2`, originals.vdb],
      });
      expect(await domainState(guest.name)).to.equal("running");
      await waitForSeq(guest, "vda", seq, 5);
    });

    it("removes the older snapshot below the newer one: its overlays merge down and are deleted", async function () {
      this.timeout(120_000);
      const started = performance.now();
      // As after a controller restart: the request carries the handles' original paths.
      await backend.remove(request(S1));
      console.log(
        `      remove (below a newer snapshot): ${(performance.now() - started).toFixed(0)} ms`,
      );
      expect((await hv.listSnapshots(guest.name)).sort()).to.deep.equal(
        [S2, memorySnapshotName(S2)].sort(),
      );
      expect(await chains(hv, guest.name)).to.deep.equal({
        vda: [`${originals.vda}.${S2}.qcow2`, originals.vda],
        vdb: [`${originals.vdb}.${S2}.qcow2`, originals.vdb],
      });
      expect(files(guest.workDir)).to.deep.equal(
        [
          `${S2}.mem`,
          "vda.qcow2",
          `vda.qcow2.${S2}.qcow2`,
          "vdb.qcow2",
          `vdb.qcow2.${S2}.qcow2`,
        ].sort(),
      );
      expect(await domainState(guest.name)).to.equal("running");
    });

    it("removes the last snapshot, then its memory image (the controller's order): only the original files remain, holding every write", async function () {
      this.timeout(120_000);
      // As with a fresh inventory: the request carries the overlays the disks run on now.
      const current = parseDisks(await hv.domainXml(guest.name)).filter(
        (d) => d.plan.backend === "libvirt-file",
      );
      const started = performance.now();
      await backend.remove({ domain: guest.name, name: S2, disks: current });
      console.log(
        `      remove (current snapshot, memory snapshot as its child): ${(performance.now() - started).toFixed(0)} ms`,
      );
      expect(await hv.listSnapshots(guest.name)).to.deep.equal([memorySnapshotName(S2)]);
      expect(existsSync(memoryFile)).to.equal(true); // libvirt never deletes a memory image
      await removeMemory(hv, { domain: guest.name, name: S2, file: memoryFile });

      expect(await hv.listSnapshots(guest.name)).to.deep.equal([]);
      expect(await chains(hv, guest.name)).to.deep.equal({
        vda: [originals.vda],
        vdb: [originals.vdb],
      });
      expect(files(guest.workDir)).to.deep.equal(["vda.qcow2", "vdb.qcow2"]);
      const used = referencedFiles(await hv.domainXml(guest.name));
      expect([...used].filter((f) => f.startsWith(guest.workDir)).sort()).to.deep.equal(
        [originals.vda, originals.vdb].sort(),
      );

      // The merges lost nothing: the guest's log is gapless and keeps growing.
      const seq = guest.writerRecords("vda").at(-1)!.seq;
      await waitForSeq(guest, "vda", seq, 3);
      for (const target of ["vda", "vdb"]) {
        const log = await guestWriterLog(guest, target);
        expect(log[0]?.seq, target).to.equal(1);
        expect(sequenceGaps(log), target).to.deep.equal([]);
      }
    });

    it("succeeds again when everything is already gone", async () => {
      await backend.remove(request(S1));
      await backend.remove(request(S2));
      await removeMemory(hv, { domain: guest.name, name: S2, file: memoryFile });
      expect(await hv.listSnapshots(guest.name)).to.deep.equal([]);
      expect(files(guest.workDir)).to.deep.equal(["vda.qcow2", "vdb.qcow2"]);
    });
  });

  describe("a memory save past its budget", () => {
    it("is aborted and waited for: no libvirt snapshot, no file, no job left, and the guest resumes", async () => {
      const name = "vmsnap-1f0c2a44-0000-4000-8000-000000000003";
      const file = join(guest.workDir, `${name}.mem`);
      const seq = guest.writerRecords("vda").at(-1)?.seq ?? 0;
      await virsh(["suspend", guest.name]);
      let err: unknown;
      const started = performance.now();
      try {
        // ~0.2 s for this guest's RAM (above): 20 ms cannot be enough.
        await saveMemory(hv, { domain: guest.name, name, file, diskTargets: [], timeoutMs: 20 });
      } catch (e) {
        err = e;
      } finally {
        await virsh(["resume", guest.name]);
      }
      console.log(
        `      save with a 20 ms budget: aborted and settled in ${(performance.now() - started).toFixed(0)} ms`,
      );
      expect(err, "the save timed out").to.be.instanceOf(HypervisorError);
      expect((err as HypervisorError).reason).to.equal("Timeout");
      expect(await hv.jobActive(guest.name), "no job left running").to.equal(false);
      expect(await hv.listSnapshots(guest.name)).to.deep.equal([]);
      expect(existsSync(file), "no memory file left").to.equal(false);
      expect(await domainState(guest.name)).to.equal("running");
      await waitForSeq(guest, "vda", seq, 2);
    });
  });
});
