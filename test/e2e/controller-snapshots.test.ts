// The controller's two flows on a real guest: a running QEMU guest (software emulation) whose
// filesystems its agent really freezes, with one qcow2 file disk (vda, snapshotted by libvirt)
// and one Ceph RBD disk (vdb, snapshotted by Ceph as an image snapshot: one RBD disk needs no
// group), and a writer on each disk that logs every 0.2 s to its disk and the console. One
// guest serves every test here, in order: a disk snapshot and what it captured, an unquiesced
// one for contrast, a VM snapshot with memory.
import { expect } from "chai";
import { statSync } from "node:fs";
import { join } from "node:path";
import type { VMSnapshot } from "../../src/api/types.ts";
import {
  conditionOf,
  useE2eController,
  type E2eController,
  type SnapshotSpec,
} from "../support/e2e/controller.ts";
import { checkSnapshotOfDisk, describeExt4, type Ext4Check } from "../support/e2e/ext4.ts";
import {
  FREEZE_STAMP_SLACK_S,
  STALL_TOLERANCE,
  longestStallMs,
  notHeldByFreeze,
  stallRange,
} from "../support/e2e/freeze-window.ts";
import { guestWriterLog, lastSeq, waitForSeq } from "../support/e2e/writer.ts";
import {
  createRbdGuestDisk,
  guestImage,
  hookCalls,
  launchGuest,
  sequenceGaps,
  type Guest,
  type HookCall,
  type WriterRecord,
} from "../support/guest/index.ts";
import { domainState, freezeStatus, virsh } from "../support/libvirt/libvirtd.ts";

const BOOT_TIMEOUT_MS = 120_000;
const DISKS = ["vda", "vdb"] as const;

describe("VMSnapshot controller on a real QEMU guest (qcow2 + RBD disks)", function () {
  this.timeout(120_000);
  let e2e: E2eController;
  let guest: Guest;

  before(async function () {
    this.timeout(600_000); // the first run on a machine builds the guest image
    await guestImage();
    e2e = await useE2eController();
    const rbd = await createRbdGuestDisk(e2e.ceph);
    guest = await launchGuest({ label: "ctl", fileDisks: 1, rbdDisks: [rbd] });
    const bootMs = await guest.waitForAgent(BOOT_TIMEOUT_MS);
    console.log(`      guest boot, define -> guest-ping answered: ${bootMs} ms`);
    for (const disk of DISKS) await waitForSeq(guest, disk, 3);
  });

  after(async () => guest?.remove());

  /** Applies a VMSnapshot of the guest and returns it once final, with the phases seen. */
  async function snapshot(name: string, spec: SnapshotSpec) {
    const watcher = await e2e.watchPhases(name);
    await e2e.apply(name, spec, guest.name);
    const done = await e2e.waitFinal(name);
    await watcher.stopAfter(done.status?.phase);
    return { done, phases: watcher.phases };
  }

  describe("disk snapshot of the running guest", () => {
    let done: VMSnapshot;
    let phases: string[];
    let seqBefore: Record<string, number>;
    let consoleBefore: number;
    const checks: Record<string, Ext4Check> = {};

    before(async function () {
      this.timeout(300_000);
      seqBefore = Object.fromEntries(DISKS.map((d) => [d, lastSeq(guest, d)]));
      consoleBefore = guest.console().length;
      ({ done, phases } = await snapshot("disk", { quiesce: "Required" }));
    });

    it("succeeds through Frozen and Thawed, with one Ceph image snapshot and one external libvirt snapshot named after the UID", () => {
      expect(phases).to.deep.equal([
        "Pending",
        "Frozen",
        "DisksSnapshotted",
        "Thawed",
        "Succeeded",
      ]);
      const st = done.status!;
      expect(conditionOf(done, "Quiesced")?.status).to.equal("True");
      expect(st.indications).to.deep.equal(["Online", "GuestAgent", "Quiesced"]);
      expect(Date.parse(st.thawedAt!) - Date.parse(st.frozenAt!)).to.equal(st.freezeDurationMs);
      const name = `vmsnap-${done.metadata.uid}`;
      const [vda, vdb] = DISKS.map((t) => st.disks!.find((d) => d.target === t)!);
      expect(vda).to.deep.include({
        backend: "libvirt-file",
        source: join(guest.workDir, "vda.qcow2"),
        snapshot: `${guest.name}@${name}`,
      });
      expect(vdb).to.include({ backend: "rbd", snapshot: `${vdb!.source}@${name}` });
    });

    it("loses no sequence number: each writer's console records and its log on disk are gapless and agree", async () => {
      for (const disk of DISKS) {
        const printed = await waitForSeq(guest, disk, lastSeq(guest, disk) + 3);
        expect(sequenceGaps(printed), `${disk}: console`).to.deep.equal([]);
        const log = await guestWriterLog(guest, disk);
        expect(log[0]?.seq, disk).to.equal(1);
        expect(sequenceGaps(log), `${disk}: log`).to.deep.equal([]);
        const onDisk = new Map(log.map((r) => [r.seq, r.t]));
        for (const r of printed.filter((p) => p.seq <= log.at(-1)!.seq))
          expect(onDisk.get(r.seq), `${disk} seq ${r.seq}`).to.equal(r.t);
      }
    });

    describe("what it captured", () => {
      before(async function () {
        this.timeout(300_000);
        for (const h of done.status!.disks!)
          checks[h.target] = await checkSnapshotOfDisk(e2e.ceph, h, guest.workDir);
        for (const [target, c] of Object.entries(checks))
          console.log(`      ${describeExt4(`quiesced ${target}`, c)}`);
      });

      it("each disk's snapshot is a clean ext4 that needs no journal recovery (e2fsck -fn, no needs_recovery)", () => {
        expect(Object.keys(checks).sort()).to.deep.equal([...DISKS]);
        for (const [target, c] of Object.entries(checks)) {
          expect(c.fsckClean, `${target}: e2fsck -fn\n${c.fsckOutput}`).to.equal(true);
          expect(c.needsRecovery, `${target}: needs_recovery`).to.equal(false);
        }
      });

      it("each holds the writer's log from seq 1, gapless, up to the freeze (the writer went on after)", () => {
        for (const [target, c] of Object.entries(checks)) {
          expect(c.writerLog[0]?.seq, target).to.equal(1);
          expect(sequenceGaps(c.writerLog), target).to.deep.equal([]);
          // Every record written before the snapshot was applied (the writer fsyncs each one);
          // more only if the writer's 0.2 s period came round before the freeze.
          expect(c.writerLog.at(-1)!.seq, target).to.be.at.least(seqBefore[target]!);
          expect(lastSeq(guest, target), target).to.be.above(c.writerLog.at(-1)!.seq + 1);
        }
      });

      it("the write at each snapshot's edge was held up while frozen, about as long as freezeDurationMs, and the writer resumed", () => {
        const window = done.status!.freezeDurationMs!;
        const lines = guest.console().slice(consoleBefore).split("\n");
        // qemu-ga's fsfreeze hook stamps the guest's uptime just before FIFREEZE and just after
        // FITHAW; this is the only freeze here.
        const calls = hookCalls(lines.join("\n"));
        expect(
          calls.map((c) => `${c.action} ${c.mode}`),
          "the hook's calls",
        ).to.deep.equal(["freeze ok", "thaw ok"]);
        const [freeze, thaw] = calls as [HookCall, HookCall];
        const freezeLine = freeze.line;
        const held: WriterRecord[] = [];
        for (const disk of DISKS) {
          // The snapshot ends at seq L: the freeze held up either L+1's append or L's fsync.
          const last = checks[disk]!.writerLog.at(-1)!.seq;
          const records = guest.writerRecords(disk);
          const edge = records.filter((r) => r.seq === last || r.seq === last + 1);
          expect(
            edge.map((r) => r.seq),
            disk,
          ).to.deep.equal([last, last + 1]);
          const [before, after] = edge as [WriterRecord, WriterRecord];
          // A frozen window shorter than the writer's 0.2 s period may fall wholly between two
          // writes: L done before the freeze, L+1 begun after the thaw. Nothing was held up
          // then, and the snapshot still ends exactly at L.
          if (before.w <= freeze.up + FREEZE_STAMP_SLACK_S && after.t >= thaw.up) {
            console.log(
              `      ${disk}: the freeze (${freeze.up}-${thaw.up} s) fell between seq ${before.seq} ` +
                `(done at ${before.w} s) and seq ${after.seq} (begun at ${after.t} s)`,
            );
            continue;
          }
          // The edge write the freeze held up. Not simply the slower of the two: qemu-ga
          // freezes the filesystems one after another after its hook's stamp, so L may still
          // complete on this disk after the stamp, and a slow fsync can outlast a short window.
          const k = edge.find((r) => notHeldByFreeze(r, freeze, thaw) === undefined);
          expect(
            k,
            `${disk}: neither edge write was held up: ${edge.map((r) => `seq ${r.seq}: ${notHeldByFreeze(r, freeze, thaw)}`).join("; ")}`,
          ).to.not.equal(undefined);
          held.push(k!);
          const at = lines.findIndex((l) => l.startsWith(`vmsnap-writer ${disk} seq=${k!.seq} `));
          expect(at, `${disk}: seq ${k!.seq} finished after the freeze began`).to.be.above(
            freezeLine,
          );
          expect(records.filter((r) => r.seq > k!.seq).length, `${disk} resumed`).to.be.at.least(3);
        }
        if (held.length === 0) return; // every window fell between writes: no stall to judge
        const stall = longestStallMs(held);
        console.log(
          `      frozen window: status.freezeDurationMs ${window} ms; the guest saw its writes held up ` +
            held.map((r) => `${r.disk} ${((r.w - r.t) * 1000).toFixed(0)} ms`).join(", ") +
            ` (tolerance -${STALL_TOLERANCE.shorterMs}/+${STALL_TOLERANCE.longerMs} ms); ` +
            `the guest's hook saw it frozen ${((thaw.up - freeze.up) * 1000).toFixed(0)} ms`,
        );
        const [low, high] = stallRange(window);
        expect(stall, "the longest stall vs freezeDurationMs").to.be.within(low, high);
      });
    });
  });

  describe("disk snapshot with quiesce: Disabled, for contrast", () => {
    let done: VMSnapshot;
    let seqAtEnd: Record<string, number>;

    it("succeeds without a freeze and says so", async () => {
      const run = await snapshot("unquiesced", { quiesce: "Disabled" });
      seqAtEnd = Object.fromEntries(DISKS.map((d) => [d, lastSeq(guest, d)]));
      done = run.done;
      expect(run.phases).to.deep.equal(["Pending", "DisksSnapshotted", "Succeeded"]);
      expect(conditionOf(done, "Quiesced")).to.include({
        status: "False",
        reason: "QuiesceDisabled",
      });
      expect(done.status?.frozenAt).to.equal(undefined);
    });

    it("captures filesystems still marked needs_recovery (reported: what e2fsck and the log show)", async function () {
      this.timeout(300_000);
      for (const h of done.status!.disks!) {
        const c = await checkSnapshotOfDisk(e2e.ceph, h, guest.workDir, { recover: true });
        console.log(`      ${describeExt4(`unquiesced ${h.target}`, c)}`);
        if (!c.fsckClean) console.log(indent(c.fsckOutput));
        const recovered = c.recoveredLog!;
        console.log(
          `      unquiesced ${h.target}: after journal replay the log ends at seq ${recovered.at(-1)?.seq ?? 0} ` +
            `(gaps: ${sequenceGaps(recovered).length}); the writer had printed seq ${seqAtEnd[h.target]} when status said Succeeded`,
        );
        // Not a coin flip: ext4 keeps needs_recovery set on disk for as long as it is mounted
        // read-write, and clears it only while frozen (ext4_freeze) or unmounted. So only a
        // frozen capture can pass the check above; this one must not.
        expect(c.needsRecovery, `${h.target}: needs_recovery`).to.equal(true);
      }
    });
  });

  describe("VM snapshot with memory", () => {
    let done: VMSnapshot;
    let seqBefore: Record<string, number>;

    it("succeeds through MemorySaved, with a 0600 memory file, the RBD snapshot and the qcow2 overlay", async () => {
      seqBefore = Object.fromEntries(DISKS.map((d) => [d, lastSeq(guest, d)]));
      const run = await snapshot("vm", { memory: true, quiesce: "Required" });
      done = run.done;
      expect(run.phases).to.deep.equal([
        "Pending",
        "Frozen",
        "DisksSnapshotted",
        "MemorySaved",
        "Thawed",
        "Succeeded",
      ]);
      const st = done.status!;
      const name = `vmsnap-${done.metadata.uid}`;
      console.log(
        `      frozen window ${st.freezeDurationMs} ms, vCPUs paused (downtimeMs) ${st.downtimeMs} ms, ` +
          `memory image ${(st.memory!.bytes / 1048576).toFixed(1)} MiB`,
      );
      expect(st.downtimeMs).to.be.a("number").and.above(0).and.at.most(st.freezeDurationMs!);

      expect(st.memory!.file).to.equal(join(e2e.controller.memoryDir, `${name}.mem`));
      const image = statSync(st.memory!.file);
      expect((image.mode & 0o777).toString(8)).to.equal("600");
      expect(st.memory!.bytes)
        .to.equal(image.size)
        .and.be.above(16 * 1048576);

      const rbd = st.disks!.find((d) => d.target === "vdb")!;
      expect(rbd).to.include({ backend: "rbd", snapshot: `${rbd.source}@${name}` });
      const snaps = await e2e.ceph.rbd(["snap", "ls", rbd.source, "--format", "json"]);
      expect(JSON.parse(snaps.stdout).map((s: { name: string }) => s.name)).to.include(name);

      const file = st.disks!.find((d) => d.target === "vda")!;
      expect(file).to.include({ backend: "libvirt-file", snapshot: `${guest.name}@${name}` });
      // Overlays are named after the original file; the disk now runs on this one.
      const overlay = join(guest.workDir, `vda.qcow2.${name}.qcow2`);
      expect(statSync(overlay).isFile()).to.equal(true);
      const blk = await virsh(["domblklist", guest.name]);
      expect(blk.split("\n").map((l) => l.trim().split(/\s+/))).to.deep.include(["vda", overlay]);
      const snapshots = (await virsh(["snapshot-list", guest.name, "--name"])).split("\n");
      expect(snapshots).to.include.members([name, `${name}.memory`]);
    });

    it("leaves the guest running, thawed, and writing", async () => {
      expect(await domainState(guest.name)).to.equal("running");
      expect(await freezeStatus(guest.name)).to.equal("thawed");
      const written: WriterRecord[] = [];
      for (const disk of DISKS) {
        const records = (await waitForSeq(guest, disk, lastSeq(guest, disk) + 3)).filter(
          (r) => r.seq > seqBefore[disk]!,
        );
        expect(sequenceGaps(records), disk).to.deep.equal([]);
        written.push(...records);
      }
      // The guest's clock stands still while its vCPUs are paused, so it sees less than the
      // frozen window: roughly the window minus the downtime.
      console.log(
        `      the guest saw its longest write take ${longestStallMs(written).toFixed(0)} ms ` +
          `(frozen ${done.status!.freezeDurationMs} ms, of which paused ${done.status!.downtimeMs} ms)`,
      );
    });
  });
});

function indent(text: string): string {
  return text
    .trim()
    .split("\n")
    .map((l) => `        | ${l}`)
    .join("\n");
}
