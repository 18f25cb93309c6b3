// An in-place restore of a VM snapshot on a real QEMU guest, done with the restore primitives
// (the VMRestore machine will drive the same steps): the controller takes a memory snapshot of a
// guest whose writers append numbered records to a qcow2 disk (vda) and an RBD disk (vdb); the
// writers go on; then the domain is stopped, the RBD disk rolled back, the file disk given a new
// overlay on the snapshot's backing file, the RAM restored paused with an XML whose disks point at
// the restored images, resumed, and thawed at once.
//
// What it proves: the restored guest is thawed (guest-fsfreeze-status), it woke up frozen (the
// thaw thawed filesystems), and on both disks the writer continues from exactly the snapshot's
// record — RAM and disks are one instant: no gap, no duplicate, and nothing of what was written
// after the snapshot survives.
import { existsSync } from "node:fs";
import { expect } from "chai";
import type { VMSnapshot } from "../../src/api/types.ts";
import { Hypervisor } from "../../src/hypervisor/connection.ts";
import { DomainXmlFlags } from "../../src/hypervisor/flags.ts";
import {
  restoreMemoryAndThaw,
  type MemoryRestoreTimings,
} from "../../src/hypervisor/memory-restore.ts";
import { restoreDomainXml, type RestoredDisk } from "../../src/hypervisor/restore-xml.ts";
import { createRevertOverlay, revertOverlayPath } from "../../src/storage/libvirt-file/restore.ts";
import { createRbdRunner } from "../../src/storage/rbd/runner.ts";
import { revertRbdSnapshots } from "../../src/storage/rbd/snapshot-copy.ts";
import { snapshotRefOf } from "../../src/storage/rbd/snapshot-ref.ts";
import { rbdConfigFor } from "../support/ceph/fixtures.ts";
import { useE2eController, type E2eController } from "../support/e2e/controller.ts";
import { checkSnapshotOfDisk } from "../support/e2e/ext4.ts";
import { guestWriterLog, lastSeq, waitForSeq } from "../support/e2e/writer.ts";
import {
  createRbdGuestDisk,
  guestImage,
  hookCalls,
  launchGuest,
  sequenceGaps,
  type Guest,
  type WriterFileRecord,
} from "../support/guest/index.ts";
import { domainState, freezeStatus, SYSTEM_URI } from "../support/libvirt/libvirtd.ts";

const DISKS = ["vda", "vdb"] as const;

describe("in-place restore of a VM snapshot on a real QEMU guest (qcow2 + RBD disks)", function () {
  this.timeout(180_000);
  let e2e: E2eController;
  let guest: Guest;
  let hv: Hypervisor;
  let snapshot: VMSnapshot;
  const atSnapshot: Record<string, WriterFileRecord[]> = {};
  const beforeRestore: Record<string, number> = {};
  let timings: MemoryRestoreTimings;

  before(async function () {
    this.timeout(600_000);
    await guestImage();
    e2e = await useE2eController();
    const rbd = await createRbdGuestDisk(e2e.ceph);
    guest = await launchGuest({ label: "restore", fileDisks: 1, rbdDisks: [rbd] });
    await guest.waitForAgent(120_000);
    for (const disk of DISKS) await waitForSeq(guest, disk, 3);
    hv = await Hypervisor.open(SYSTEM_URI, { callTimeoutMs: 30_000 });

    await e2e.apply("vm", { memory: true, quiesce: "Required" }, guest.name);
    snapshot = await e2e.waitFinal("vm");
    expect(snapshot.status?.phase, JSON.stringify(snapshot.status?.error)).to.equal("Succeeded");
    // What the snapshot holds on each disk (the RBD snapshot, the overlay's backing file).
    for (const handle of snapshot.status!.disks!)
      atSnapshot[handle.target] = (
        await checkSnapshotOfDisk(e2e.ceph, handle, guest.workDir)
      ).writerLog;
    // The writers go on past the snapshot: these records must not survive the restore.
    for (const disk of DISKS) {
      const last = atSnapshot[disk]!.at(-1)!.seq;
      await waitForSeq(guest, disk, last + 10);
      beforeRestore[disk] = lastSeq(guest, disk);
    }
  });

  after(async () => {
    await hv?.close();
    await guest?.remove();
  });

  const status = () => snapshot.status!;

  it("restores in place: stop, revert both disks, restore RAM paused, resume, thaw at once", async () => {
    const status = snapshot.status!;
    const restoreName = `vmrestore-${snapshot.metadata.uid!.slice(0, 8)}`;
    await hv.destroy(guest.name);

    const restored: RestoredDisk[] = [];
    const rbdRefs = status.disks!.filter((h) => h.backend === "rbd").map(snapshotRefOf);
    await revertRbdSnapshots(createRbdRunner(rbdConfigFor(e2e.ceph)), rbdRefs);
    for (const ref of rbdRefs)
      restored.push({ target: ref.target, source: { kind: "rbd", ...ref.image } });
    for (const h of status.disks!.filter((d) => d.backend === "libvirt-file")) {
      const overlay = revertOverlayPath(h.source, restoreName);
      await createRevertOverlay(h.source, overlay);
      restored.push({ target: h.target, source: { kind: "file", path: overlay } });
    }

    // The memory image carries the domain XML of its instant; Secure keeps the RBD auth block.
    const imageXml = await hv.saveImageXml(status.memory!.file, { flags: DomainXmlFlags.Secure });
    const xml = restoreDomainXml(imageXml, { disks: restored });
    const persistent = await hv.domainXml(guest.name, {
      flags: DomainXmlFlags.Inactive | DomainXmlFlags.Secure,
    });
    timings = await restoreMemoryAndThaw(hv, {
      domain: guest.name,
      file: status.memory!.file,
      xml,
      thawTimeoutMs: 10_000,
    });
    console.log(
      `      restore ${timings.restoreMs} ms; resume -> thaw confirmed ${timings.resumeToThawMs} ms ` +
        `(${timings.thawAttempts} thaw attempt(s), ${timings.thawedFilesystems} filesystem(s) thawed; ` +
        `FSThaw call ${timings.thawCallMs} ms, guest-fsfreeze-status ${timings.statusCallMs} ms)`,
    );
    expect(await domainState(guest.name)).to.equal("running");
    // The restore changed the running definition only; the persistent one must follow, or a
    // cold boot (and the snapshot's deletion) would still see the old overlay.
    await hv.defineXml(restoreDomainXml(persistent, { disks: restored }));
  });

  it("the guest woke up frozen and is thawed now (guest-fsfreeze-status)", async () => {
    expect(timings.thawedFilesystems, "the thaw found frozen filesystems").to.be.greaterThan(0);
    expect(await freezeStatus(guest.name)).to.equal("thawed");
    // On the guest's own clock: the first write after the resume was blocked by the frozen
    // filesystems until the thaw. Its w - t also counts the part of the snapshot's frozen window
    // before the vCPUs were paused, so it is an upper bound of the frozen time after the resume.
    for (const disk of DISKS) await waitForSeq(guest, disk, atSnapshot[disk]!.at(-1)!.seq + 2);
    const thaw = hookCalls(guest.console())
      .filter((c) => c.action === "thaw")
      .at(-1);
    for (const disk of DISKS) {
      // The console keeps the pre-restore records too: the restored one with this seq is the last.
      const first = guest
        .writerRecords(disk)
        .filter((r) => r.seq === atSnapshot[disk]!.at(-1)!.seq + 1)
        .at(-1);
      if (first)
        console.log(
          `      ${disk}: first write after the restore blocked ${((first.w - first.t) * 1000).toFixed(0)} ms ` +
            `on the guest clock, the snapshot's frozen window included (thaw hook at up=${thaw?.up ?? "?"})`,
        );
    }
  });

  it("on both disks the writer continues from exactly the snapshot's record: no gap, no duplicate, nothing of after the snapshot", async () => {
    for (const disk of DISKS) {
      const snap = atSnapshot[disk]!;
      const k = snap.at(-1)!.seq;
      const target = beforeRestore[disk]! + 3;
      // Poll the file on the disk until the writer is past where it was before the restore.
      let log: WriterFileRecord[] = [];
      for (let i = 0; i < 150 && (log.at(-1)?.seq ?? 0) < target; i++) {
        log = await guestWriterLog(guest, disk);
        await new Promise((r) => setTimeout(r, 200));
      }
      expect(log.at(-1)?.seq, `${disk}: writer progress`).to.be.at.least(target);
      expect(sequenceGaps(log), `${disk}: gaps`).to.deep.equal([]);
      const seqs = log.map((r) => r.seq);
      expect(new Set(seqs).size, `${disk}: duplicates`).to.equal(seqs.length);
      expect(
        log.slice(0, k),
        `${disk}: the snapshot's records are kept as they were`,
      ).to.deep.equal(snap);
      console.log(
        `      ${disk}: snapshot ended at seq ${k}; the writer had reached ${beforeRestore[disk]} before the restore; ` +
          `after it the disk's log runs 1..${log.at(-1)!.seq} without gap or duplicate`,
      );
    }
  });

  it("deleting the VMSnapshot afterwards removes its stale overlay and leaves the restored guest running", async () => {
    const stale = status().disks!.find((d) => d.backend === "libvirt-file")!;
    const oldOverlay = `${stale.source}.vmsnap-${snapshot.metadata.uid}.qcow2`;
    expect(existsSync(oldOverlay), "the snapshot's overlay before").to.equal(true);
    await e2e.delete("vm");
    expect(existsSync(oldOverlay), "the snapshot's overlay after").to.equal(false);
    expect(existsSync(stale.source), "the backing file the restored disk stands on").to.equal(true);
    expect(await domainState(guest.name)).to.equal("running");
    for (const disk of DISKS) await waitForSeq(guest, disk, lastSeq(guest, disk) + 2);
    expect(sequenceGaps(await guestWriterLog(guest, "vda"))).to.deep.equal([]);
  });
});
