// spec.memoryMode Live through the agent, on a real QEMU guest (qcow2 + RBD disks, RAM partly
// random and rewritten 10×/s): the vCPUs pause only for the disk snapshots and QEMU's arming of
// its background snapshot; the guest is thawed and runs while RAM is written; the phases say so
// in the order they happened (Thawed before MemorySaved). Restored in place through a VMRestore,
// the writer continues from exactly the snapshot's record on both disks: disks and RAM are one
// instant. SIGKILLed while RAM is being written, the next agent finishes the image (QEMU writes
// through its own descriptor; the image is marked complete only once QEMU says so, so a half
// image is never reported), and the guest ends thawed and running.
import { existsSync, openSync, readSync, closeSync } from "node:fs";
import { expect } from "chai";
import type { VMSnapshot } from "../../src/api/types.ts";
import { parseSaveImageHeader } from "../../src/hypervisor/save-image-header.ts";
import { vmrestoresIn, type VMRestores } from "../support/kube/vmrestores.ts";
import { waitFor } from "../support/processes.ts";
import { useE2eController, type E2eController } from "../support/e2e/controller.ts";
import { checkSnapshotOfDisk } from "../support/e2e/ext4.ts";
import { guestWriterLog, lastSeq, waitForSeq } from "../support/e2e/writer.ts";
import {
  createRbdGuestDisk,
  guestImage,
  launchGuest,
  sequenceGaps,
  type Guest,
  type WriterFileRecord,
} from "../support/guest/index.ts";
import { domainState, freezeStatus } from "../support/libvirt/libvirtd.ts";

const DISKS = ["vda", "vdb"] as const;

/** The save-image header at the start of a memory image (libvirt refuses a partial one). */
function imageHeader(file: string) {
  const buffer = Buffer.alloc(1024 * 1024);
  const fd = openSync(file, "r");
  try {
    const n = readSync(fd, buffer, 0, buffer.length, 0);
    return parseSaveImageHeader(buffer.subarray(0, n));
  } finally {
    closeSync(fd);
  }
}

describe("live memory snapshots (spec.memoryMode Live) on a real QEMU guest", function () {
  this.timeout(300_000);
  let e2e: E2eController;
  let guest: Guest;
  let restores: VMRestores;

  before(async function () {
    this.timeout(600_000);
    await guestImage();
    e2e = await useE2eController();
    const rbd = await createRbdGuestDisk(e2e.ceph);
    guest = await launchGuest({
      label: "live",
      fileDisks: 1,
      rbdDisks: [rbd],
      memoryMiB: 256,
      dirtyMiB: 96,
      churnMiB: 8,
    });
    await guest.waitForAgent(180_000);
    for (const disk of DISKS) await waitForSeq(guest, disk, 3);
    restores = vmrestoresIn({
      cp: e2e.cp,
      namespace: e2e.namespace,
      controllerLog: () => e2e.controller.log(),
    });
  });

  after(async () => {
    await guest?.remove();
  });

  it("pauses only to take the disks and arm QEMU, thaws, writes RAM while the guest runs, and a restore continues from that instant", async () => {
    const watch = await e2e.watchPhases("live-1");
    await e2e.apply(
      "live-1",
      { memory: true, memoryMode: "Live", quiesce: "Required", freezeTimeout: "30s" },
      guest.name,
    );
    const snapshot: VMSnapshot = await e2e.waitFinal("live-1");
    await watch.stopAfter("Succeeded");
    const st = snapshot.status!;
    expect(st.phase, JSON.stringify(st.error)).to.equal("Succeeded");
    expect(watch.phases).to.deep.equal([
      "Pending",
      "Frozen",
      "DisksSnapshotted",
      "Thawed",
      "MemorySaved",
      "Succeeded",
    ]);
    expect(st.memory).to.include({ mode: "Live" });
    expect(Date.parse(st.memoryCapturedAt!)).to.be.at.most(Date.parse(st.thawedAt!));
    const header = imageHeader(st.memory!.file);
    expect(header.complete, "the image is marked complete").to.equal(true);
    expect(header.xml).to.contain(`<name>${guest.name}</name>`);
    expect(st.memory!.bytes).to.be.above(96 * 2 ** 20); // the random fill is in it
    console.log(
      `      live: vCPUs paused ${st.downtimeMs} ms, frozen ${st.freezeDurationMs} ms, ` +
        `image ${(st.memory!.bytes / 2 ** 20).toFixed(0)} MiB written after the thaw ` +
        `(${Date.parse(st.completionTime!) - Date.parse(st.thawedAt!)} ms)`,
    );
    expect(await domainState(guest.name)).to.equal("running");
    expect(await freezeStatus(guest.name)).to.equal("thawed");

    // What the snapshot holds on each disk, then the writers go on past it.
    const atSnapshot: Record<string, WriterFileRecord[]> = {};
    for (const handle of st.disks!)
      atSnapshot[handle.target] = (
        await checkSnapshotOfDisk(e2e.ceph, handle, guest.workDir)
      ).writerLog;
    for (const disk of DISKS) await waitForSeq(guest, disk, atSnapshot[disk]!.at(-1)!.seq + 5);

    await restores.apply("live-back", {
      snapshotName: "live-1",
      target: { inPlace: {} },
      stopRunningTarget: true,
      thawTimeout: "30s",
    });
    const restored = await restores.waitFinal("live-back", 180_000);
    expect(restored.status?.phase, JSON.stringify(restored.status?.error)).to.equal("Succeeded");
    expect(restored.status!.thawedFilesystems, "the RAM image woke up frozen").to.be.above(0);
    for (const disk of DISKS) {
      const k = atSnapshot[disk]!.at(-1)!.seq;
      let log: WriterFileRecord[] = [];
      for (let i = 0; i < 150 && (log.at(-1)?.seq ?? 0) < k + 3; i++) {
        log = await guestWriterLog(guest, disk);
        await new Promise((r) => setTimeout(r, 200));
      }
      expect(sequenceGaps(log), `${disk}: gaps`).to.deep.equal([]);
      const seqs = log.map((r) => r.seq);
      expect(new Set(seqs).size, `${disk}: duplicates`).to.equal(seqs.length);
      expect(log.slice(0, k), `${disk}: the snapshot's records`).to.deep.equal(atSnapshot[disk]);
      console.log(
        `      ${disk}: snapshot at seq ${k}; after the restore the log runs 1..${log.at(-1)!.seq} without gap or duplicate`,
      );
    }
    await e2e.delete("live-1");
  });

  it("SIGKILLed while RAM is being written: the next agent finishes the image QEMU kept writing; the guest stays thawed and running", async () => {
    const name = "live-killed";
    let killing: Promise<unknown> | undefined;
    const watch = await e2e.watchFor(
      name,
      (s) => s.status?.phase === "Thawed",
      () => (killing = e2e.killAndRestart()),
    );
    await e2e.apply(
      name,
      { memory: true, memoryMode: "Live", quiesce: "Required", freezeTimeout: "30s" },
      guest.name,
    );
    await waitFor("the watch to see Thawed", () => killing !== undefined, 120_000, 10);
    watch.stop();
    await killing;
    const done = await e2e.waitFinal(name);
    const st = done.status!;
    console.log(
      `      killed at Thawed (RAM being written): the next agent ended ${st.phase}` +
        (st.phase === "Failed" ? ` (${st.error?.reason}: ${st.error?.message})` : ""),
    );
    expect(await domainState(guest.name)).to.equal("running");
    expect(await freezeStatus(guest.name)).to.equal("thawed");
    // QEMU writes through its own descriptor whatever happens to the agent: the next one waits
    // for the write it finds under way (or done) and completes the image.
    expect(st.phase, JSON.stringify(st.error)).to.equal("Succeeded");
    expect(imageHeader(st.memory!.file).complete, "a reported image is complete").to.equal(true);
    for (const disk of DISKS) await waitForSeq(guest, disk, lastSeq(guest, disk) + 2);
    await e2e.delete(name);
    expect(existsSync(st.memory!.file), "the image goes with the snapshot").to.equal(false);
  });
});
