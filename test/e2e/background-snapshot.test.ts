// QEMU's background snapshot driven through libvirt 9.0 (src/hypervisor/background-snapshot.ts)
// on a real QEMU guest whose RAM is half random data and partly rewritten 10×/s: the vCPUs are
// paused only to copy the disk (standing in for the disk snapshots) and arm write tracking, RAM
// is written while the guest runs, and the image — libvirt's header in front of QEMU's stream —
// restores with virDomainRestoreFlags(PAUSED) into a guest whose disk writer continues from the
// instant of the pause, without gap or duplicate. An unfinished image is refused by libvirt, and
// an abandoned one leaves the guest running and no file.
import { expect } from "chai";
import { copyFileSync, existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

import {
  armBackgroundSnapshot,
  cancelBackgroundSnapshot,
  finishBackgroundSnapshot,
  prepareBackgroundSnapshot,
} from "../../src/hypervisor/background-snapshot.ts";
import { Hypervisor } from "../../src/hypervisor/connection.ts";
import { HypervisorError } from "../../src/hypervisor/errors.ts";
import { SaveRestoreFlags } from "../../src/hypervisor/flags.ts";
import { parseSaveImageHeader } from "../../src/hypervisor/save-image-header.ts";
import { type Guest, guestImage, launchGuest } from "../support/guest/index.ts";
import { memoryCycle, restoreAndCheck } from "../support/e2e/live-memory.ts";
import { SYSTEM_URI, useLibvirtd, virsh } from "../support/libvirt/libvirtd.ts";
import { waitFor } from "../support/processes.ts";

describe("background memory snapshot on a real libvirtd 9.0 + QEMU 7.2 guest", function () {
  let hv: Hypervisor;
  let work: string;

  before(async function () {
    this.timeout(600_000);
    await useLibvirtd();
    await guestImage();
    hv = await Hypervisor.open(SYSTEM_URI, { callTimeoutMs: 120_000 });
    work = mkdtempSync(join(tmpdir(), "vmsnap-bg-"));
  });

  after(async () => {
    await hv?.close();
    if (work) rmSync(work, { recursive: true, force: true });
  });

  async function bootGuest(label: string): Promise<Guest> {
    const guest = await launchGuest({ label, memoryMiB: 128, dirtyMiB: 48, churnMiB: 8 });
    await guest.waitForReady(180_000);
    return guest;
  }

  it("pauses only to arm, writes RAM while the guest runs, and restores paused into a guest whose writer continues without gap or duplicate", async function () {
    this.timeout(600_000);
    const guest = await bootGuest("bg-restore");
    try {
      const file = join(work, "restore.img");
      const diskCopy = join(work, "restore-vda.qcow2");
      const cycle = await memoryCycle({ mode: "background", hv, guest, file, diskCopy });

      // QEMU's own stop inside the arming is milliseconds; the guest ran during the write.
      expect(cycle.qemuDowntimeMs).to.be.a("number").below(1_000);
      expect((await hv.domainInfo(guest.name)).state).to.equal("running");
      const header = parseSaveImageHeader(readFileSync(file).subarray(0, 1024 * 1024));
      expect(header.complete).to.equal(true);
      expect(header.xml).to.contain(`<name>${guest.name}</name>`);
      expect(cycle.imageBytes).to.be.above(48 * 2 ** 20); // the random fill is in it

      const check = await restoreAndCheck(hv, guest, file, diskCopy);
      expect(check.stateAfterRestore).to.equal("paused");
      expect(check.missing, "sequence numbers lost between disk and RAM").to.deep.equal([]);
      expect(check.duplicates, "sequence numbers written twice").to.deep.equal([]);
      expect(check.lastSeq, "the restored writer went on").to.be.above(cycle.seqBeforePause);
      expect(check.firstSeq).to.equal(1);
    } finally {
      await guest.remove();
    }
  });

  it("leaves an image libvirt refuses to restore until the write is complete, and a cancel leaves the guest running and no file", async function () {
    this.timeout(600_000);
    const guest = await bootGuest("bg-partial");
    try {
      const file = join(work, "partial.img");
      await prepareBackgroundSnapshot(hv, { domain: guest.name, file, timeoutMs: 30_000 });
      await hv.suspend(guest.name);
      await armBackgroundSnapshot(hv, { domain: guest.name, file, timeoutMs: 30_000 });
      // While QEMU writes: the header still says partial.
      const early = join(work, "early.img");
      copyFileSync(file, early);
      expect(parseSaveImageHeader(readFileSync(early)).complete).to.equal(false);
      let refused: unknown;
      try {
        await hv.restore(early, { flags: SaveRestoreFlags.Paused, timeoutMs: 60_000 });
      } catch (err) {
        refused = err;
      }
      expect(refused).to.be.instanceOf(HypervisorError);
      expect(String(refused)).to.match(/incomplete/);

      await finishBackgroundSnapshot(hv, { domain: guest.name, file, timeoutMs: 300_000 });
      rmSync(file);

      // A second one, abandoned while QEMU writes: the write is let finish (QEMU 7.2 hangs the
      // guest after migrate_cancel of a background snapshot), then no file, the guest running
      // and writing, no migration left.
      await prepareBackgroundSnapshot(hv, { domain: guest.name, file, timeoutMs: 30_000 });
      await hv.suspend(guest.name);
      await armBackgroundSnapshot(hv, { domain: guest.name, file, timeoutMs: 30_000 });
      await cancelBackgroundSnapshot(hv, guest.name, file, { timeoutMs: 120_000 });
      expect(existsSync(file)).to.equal(false);
      expect((await hv.domainInfo(guest.name)).state).to.equal("running");
      const status = (await hv.qmp(guest.name, "query-migrate", undefined, {
        timeoutMs: 10_000,
      })) as { status?: string };
      expect(status.status).to.equal("completed");
      const seq = guest.writerRecords("vda").at(-1)?.seq ?? 0;
      await waitFor(
        "the guest's writer after the abandoned snapshot",
        () => (guest.writerRecords("vda").at(-1)?.seq ?? 0) > seq + 2,
        30_000,
        100,
      );
      // libvirt records the QMP use as a taint, nothing more.
      expect(await virsh(["dominfo", guest.name])).to.match(/custom[- ]monitor/i);
    } finally {
      await guest.remove();
    }
  });
});
