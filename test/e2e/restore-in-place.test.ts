// An in-place restore of a VM snapshot on a real QEMU guest, as a user asks for it: the agent
// takes a memory snapshot of a guest whose writers append numbered records to a qcow2 disk (vda)
// and an RBD disk (vdb); the writers go on; then a VMRestore makes the agent stop the domain, roll
// the RBD disk back, give the file disk a new overlay on the snapshot's backing file, restore the
// RAM paused with an XML whose disks point at the restored images, resume, and thaw at once.
//
// What it proves: the restored guest is thawed (guest-fsfreeze-status), it woke up frozen (the
// thaw thawed filesystems), and on both disks the writer continues from exactly the snapshot's
// record — RAM and disks are one instant: no gap, no duplicate, and nothing of what was written
// after the snapshot survives.
import { existsSync } from "node:fs";
import { expect } from "chai";
import type { VMRestore } from "../../src/api/restore-types.ts";
import type { VMSnapshot } from "../../src/api/types.ts";
import { vmrestoresIn, type VMRestores } from "../support/kube/vmrestores.ts";
import { waitFor } from "../support/processes.ts";
import { useE2eController, type E2eController } from "../support/e2e/controller.ts";
import { join } from "node:path";
import { rmSync } from "node:fs";
import {
  checkExt4,
  checkSnapshotOfDisk,
  describeExt4,
  exportRbdSnapshot,
  qcow2ToRaw,
} from "../support/e2e/ext4.ts";
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
import { domainState, freezeStatus, fsFreeze, virsh } from "../support/libvirt/libvirtd.ts";
import { parseThawRecord, THAW_RECORD_URI } from "../../src/hypervisor/thaw-record.ts";

const DISKS = ["vda", "vdb"] as const;

describe("in-place restore of a VM snapshot on a real QEMU guest (qcow2 + RBD disks)", function () {
  this.timeout(180_000);
  let e2e: E2eController;
  let guest: Guest;
  let restores: VMRestores;
  let restored: VMRestore;
  let snapshot: VMSnapshot;
  const atSnapshot: Record<string, WriterFileRecord[]> = {};
  const beforeRestore: Record<string, number> = {};

  before(async function () {
    this.timeout(600_000);
    await guestImage();
    e2e = await useE2eController();
    const rbd = await createRbdGuestDisk(e2e.ceph);
    guest = await launchGuest({ label: "restore", fileDisks: 1, rbdDisks: [rbd] });
    await guest.waitForAgent(120_000);
    for (const disk of DISKS) await waitForSeq(guest, disk, 3);
    restores = vmrestoresIn({
      cp: e2e.cp,
      namespace: e2e.namespace,
      controllerLog: () => e2e.controller.log(),
    });

    await e2e.apply("restore-src", { memory: true, quiesce: "Required" }, guest.name);
    snapshot = await e2e.waitFinal("restore-src");
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
    await guest?.remove();
  });

  const status = () => snapshot.status!;

  it("restores in place through a VMRestore: stop, revert both disks, RAM paused, resume, thaw at once", async () => {
    const watch = await restores.watchPhases("vm-back");
    await restores.apply("vm-back", {
      snapshotName: "restore-src",
      target: { inPlace: {} },
      stopRunningTarget: true,
      thawTimeout: "20s",
    });
    restored = await restores.waitFinal("vm-back", 120_000);
    watch.stop();
    expect(restored.status?.phase, JSON.stringify(restored.status?.error)).to.equal("Succeeded");
    expect(watch.phases).to.deep.equal([
      "Pending",
      "TargetStopped",
      "DisksRestored",
      "MemoryRestored",
      "Resumed",
      "Thawed",
      "Succeeded",
    ]);
    const st = restored.status!;
    expect(st).to.include({
      restoresMemory: true,
      memoryRestored: true,
      consistency: "ApplicationConsistent",
      thawedBy: "Agent",
    });
    expect(st.restoredDisks!.map((d) => [d.target, d.method]).sort()).to.deep.equal([
      ["vda", "Overlay"],
      ["vdb", "Rollback"],
    ]);
    expect(Date.parse(st.thawedAt!) - Date.parse(st.resumedAt!)).to.equal(st.resumeToThawMs);
    expect(Date.parse(st.thawedAt!)).to.be.at.most(Date.parse(st.thawDeadline!));
    console.log(
      `      VMRestore: resume -> thaw confirmed ${st.resumeToThawMs} ms; ` +
        `start -> Succeeded ${Date.parse(st.completionTime!) - Date.parse(st.startTime!)} ms`,
    );
    expect(await domainState(guest.name)).to.equal("running");
  });

  it("the guest woke up frozen and is thawed now (guest-fsfreeze-status)", async () => {
    expect(
      restored.status!.thawedFilesystems,
      "the thaw found frozen filesystems",
    ).to.be.greaterThan(0);
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
    await e2e.delete("restore-src");
    expect(existsSync(oldOverlay), "the snapshot's overlay after").to.equal(false);
    expect(existsSync(stale.source), "the backing file the restored disk stands on").to.equal(true);
    expect(await domainState(guest.name)).to.equal("running");
    for (const disk of DISKS) await waitForSeq(guest, disk, lastSeq(guest, disk) + 2);
    expect(sequenceGaps(await guestWriterLog(guest, "vda"))).to.deep.equal([]);
  });

  for (const phase of ["MemoryRestored", "Resumed"] as const) {
    it(`the agent SIGKILLed once the restore shows ${phase}: the guest ends running and thawed, the next agent finishes the restore`, async () => {
      const source = `restore-src-${phase.toLowerCase()}`;
      await e2e.apply(source, { memory: true, quiesce: "Required" }, guest.name);
      const snap = await e2e.waitFinal(source);
      expect(snap.status?.phase, JSON.stringify(snap.status?.error)).to.equal("Succeeded");
      for (const disk of DISKS) await waitForSeq(guest, disk, lastSeq(guest, disk) + 3);

      const name = `back-killed-${phase.toLowerCase()}`;
      let killing: Promise<unknown> | undefined;
      let nextAgentReadyAt = 0;
      const watch = await restores.watchFor(
        name,
        (r) => r.status?.phase === phase,
        () => (killing = e2e.killAndRestart().then(() => (nextAgentReadyAt = Date.now()))),
      );
      await restores.apply(name, {
        snapshotName: source,
        target: { inPlace: {} },
        stopRunningTarget: true,
        thawTimeout: "20s",
      });
      await waitFor(`the watch to see ${phase}`, () => killing !== undefined, 120_000, 10);
      watch.stop();
      await killing;
      const done = await restores.waitFinal(name, 120_000);
      expect(done.status?.phase, JSON.stringify(done.status?.error)).to.equal("Succeeded");
      expect(await domainState(guest.name)).to.equal("running");
      expect(await freezeStatus(guest.name)).to.equal("thawed");
      const st = done.status!;
      console.log(
        `      killed at ${phase}; the next agent finished: resume -> thaw ${st.resumeToThawMs} ms, ` +
          `thawed by the ${st.thawedBy} (${st.thawedFilesystems} filesystem(s) frozen)`,
      );
      // Whoever thawed, status says it, and counts the frozen time to that thaw: a thaw the
      // guard did as the agent died (or the agent's own call, landing as it died) is not
      // reported as the next agent's, seconds later — the record on the domain says when.
      if (phase === "MemoryRestored") {
        // Usually the next agent resumes and thaws; if the kill landed just after the dying
        // agent's own resume (status still MemoryRestored), its guard thawed — either way the
        // thaw that found the frozen filesystems is the one reported.
        expect(st.thawedFilesystems, "the RAM image woke up frozen").to.be.greaterThan(0);
      } else {
        expect(
          Date.parse(st.thawedAt!),
          "killed after the resume: thawed before the next agent was even up",
        ).to.be.below(nextAgentReadyAt);
        // The time in status is the first thaw's, as its thawer recorded it on the domain.
        const record = parseThawRecord(
          await virsh(["metadata", guest.name, "--live", "--uri", THAW_RECORD_URI]),
        );
        expect(record?.id, "the record names this restore").to.equal(done.metadata.uid);
        expect(Date.parse(st.thawedAt!)).to.equal(Math.max(record!.at, Date.parse(st.resumedAt!)));
        if (st.thawedBy === "Agent") {
          // The kill came after the dying agent's thaw and its record: that record is the time.
          expect(st.thawedFilesystems, "the dying agent's own thaw").to.be.greaterThan(0);
        } else {
          // The guard thawed it (n > 0), or found it thawed by the dying agent's call (0).
          expect(st.thawedBy).to.equal("Guard");
        }
      }
      const log = await guestWriterLog(guest, "vdb");
      expect(sequenceGaps(log), "vdb: gaps").to.deep.equal([]);
      await e2e.delete(source);
    });
  }

  // Last, because it stops the guest: the disks three memory restores left behind, after a clean
  // stop. The tiny guest has no shutdown path of its own, so "clean" is what a shutdown's final
  // step leaves: the agent freezes the filesystems (ext4 flushes its journal and clears
  // needs_recovery), then the power goes off. Had RAM and disks disagreed after a restore, the
  // restored kernel's writes would have corrupted them, and e2fsck -fn would say so.
  it("after the memory restores, a clean stop leaves both disks e2fsck -fn clean with the writer's log gapless", async () => {
    const sources = Object.fromEntries(
      (await virsh(["domblklist", guest.name]))
        .split("\n")
        .map((line) => line.trim().split(/\s+/))
        .filter(([target]) => (DISKS as readonly string[]).includes(target ?? "")),
    ) as Record<string, string>;
    const frozen = await fsFreeze(guest.name);
    expect(frozen, "filesystems frozen for the stop").to.equal(DISKS.length);
    await virsh(["destroy", guest.name]);
    for (const disk of DISKS) {
      const raw = join(guest.workDir, `${disk}.stopped.raw`);
      try {
        if (disk === "vda") await qcow2ToRaw(sources[disk]!, raw);
        else await exportRbdSnapshot(e2e.ceph, sources[disk]!, raw);
        const check = await checkExt4(raw);
        console.log(`      ${describeExt4(`${disk} after the stop`, check)}`);
        expect(check.fsckClean, `${disk}: ${check.fsckOutput}`).to.equal(true);
        expect(check.needsRecovery, `${disk}: needs_recovery`).to.equal(false);
        expect(sequenceGaps(check.writerLog), `${disk}: gaps`).to.deep.equal([]);
        expect(
          check.writerLog.at(-1)!.seq,
          `${disk}: the writer went on after the restores`,
        ).to.be.greaterThan(beforeRestore[disk]!);
      } finally {
        rmSync(raw, { force: true });
      }
    }
  });
});
