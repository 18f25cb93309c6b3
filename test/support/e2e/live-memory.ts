// One memory snapshot of a real test guest, three ways, each timed from the host and from the
// guest's writer (ConsoleWatch), for the e2e probe and bench/live-memory.ts:
// - paused: what the controller does today — freeze, pause, disk, libvirt memory-only snapshot
//   of the paused guest, resume, thaw (RAM written while paused);
// - background: freeze, pause, disk, arm QEMU's background snapshot (background-snapshot.ts),
//   resume, thaw, then RAM written while the guest runs;
// - libvirtLive: libvirt's live external memory snapshot (precopy while running, short final
//   pause chosen by QEMU; no freeze and no disk — nothing can be put inside that pause).
// The disk snapshot is a plain copy of the guest's qcow2 taken while the vCPUs are paused: it
// stands in for the backends' snapshots and gives the restore a disk of that instant.
import { execFile } from "node:child_process";
import { statSync } from "node:fs";
import { copyFile, open, rm } from "node:fs/promises";
import { setTimeout as sleep } from "node:timers/promises";
import { promisify } from "node:util";

import {
  armBackgroundSnapshot,
  cancelBackgroundSnapshot,
  finishBackgroundSnapshot,
  prepareBackgroundSnapshot,
} from "../../../src/hypervisor/background-snapshot.ts";
import type { Hypervisor } from "../../../src/hypervisor/connection.ts";
import {
  SaveRestoreFlags,
  SnapshotCreateFlags,
  SnapshotDeleteFlags,
} from "../../../src/hypervisor/flags.ts";
import { removeMemory, saveMemory } from "../../../src/hypervisor/memory-snapshot.ts";
import { parseSaveImageHeader } from "../../../src/hypervisor/save-image-header.ts";
import { memorySnapshotXml } from "../../../src/hypervisor/snapshot-xml.ts";
import { sequenceGaps, type Guest } from "../guest/index.ts";
import { guestWriterLog } from "./writer.ts";
import { ConsoleWatch, type WriterStall } from "../guest/console-watch.ts";
import { SYSTEM_URI } from "../libvirt/virsh.ts";

const run = promisify(execFile);

export type LiveMemoryMode = "paused" | "background" | "libvirtLive";

export interface MemoryCycle {
  readonly mode: LiveMemoryMode;
  /** suspend returned → vCPUs running again (resume returned, or QEMU resumed them) (ms). */
  readonly pausedMs: number;
  /** Of that, the stand-in disk snapshot (copy of the qcow2) (ms). */
  readonly diskMs: number;
  /** Of that, what the memory mode itself costs while paused (ms). */
  readonly memoryWhilePausedMs: number;
  /** fsfreeze called → fsthaw returned (ms); 0 for libvirtLive, which does not freeze. */
  readonly frozenMs: number;
  /** QEMU's own downtime figure (background: its internal stop; libvirtLive: the final pause). */
  readonly qemuDowntimeMs: number | undefined;
  /** background: QEMU's setup time, inside the caller's pause (ms). */
  readonly qemuSetupMs: number | undefined;
  /** First call → image complete on disk (ms). */
  readonly totalMs: number;
  readonly imageBytes: number;
  /** background: preparing the image before the freeze (ms; not in the paused window). */
  readonly prepareMs: number;
  /** background: where the arming went (Armed.steps). */
  readonly armSteps: Readonly<Record<string, number>> | undefined;
  /** The writer's last sequence number printed before the freeze/pause. */
  readonly seqBeforePause: number;
  /** The writer around the pause (from just before the freeze/pause to the thaw/resume). */
  readonly stallAtPause: WriterStall;
  /** The writer while RAM is written with the guest running (background, libvirtLive). */
  readonly stallWhileWriting: WriterStall | undefined;
}

export interface CycleRequest {
  readonly mode: LiveMemoryMode;
  readonly hv: Hypervisor;
  readonly guest: Guest;
  /** Where the memory image goes. */
  readonly file: string;
  /** Where the paused-instant copy of vda goes (not for libvirtLive). */
  readonly diskCopy: string;
  readonly timeoutMs?: number;
}

/** One memory snapshot of `guest` in `mode`; leaves the guest running and thawed. */
export async function memoryCycle(request: CycleRequest): Promise<MemoryCycle> {
  const { mode, hv, guest, file } = request;
  const domain = guest.name;
  const timeoutMs = request.timeoutMs ?? 300_000;
  const watch = new ConsoleWatch(guest.consoleLog);
  try {
    await waitForLines(watch, 6);
    if (mode === "libvirtLive") return await libvirtLiveCycle(hv, domain, file, watch, timeoutMs);

    const disk = guest.disks.find((d) => d.kind === "file");
    if (!disk || disk.kind !== "file") throw new Error(`${domain} has no file disk to copy`);
    // Outside the frozen window: header, capability, the file handed to QEMU.
    const tp = performance.now();
    if (mode === "background") {
      await prepareBackgroundSnapshot(hv, { domain, file, timeoutMs: 30_000 });
    }
    const prepareMs = Math.round(performance.now() - tp);
    watch.poll();
    const seqBeforePause = watch.lines.at(-1)?.seq ?? 0;
    const t0 = performance.now();
    try {
      await hv.fsFreeze(domain);
    } catch (err) {
      if (mode === "background") await cancelBackgroundSnapshot(hv, domain, file);
      throw err;
    }
    let resumed = false;
    let t1 = 0;
    let t2 = 0;
    let t3 = 0;
    let t4 = 0;
    let qemuDowntimeMs: number | undefined;
    let qemuSetupMs: number | undefined;
    let armSteps: Readonly<Record<string, number>> | undefined;
    try {
      await hv.suspend(domain);
      t1 = performance.now();
      try {
        await copyFile(disk.path, request.diskCopy);
        t2 = performance.now();
        if (mode === "paused") {
          await saveMemory(hv, {
            domain,
            name: "vmsnap-probe",
            file,
            diskTargets: guest.disks.map((d) => d.target),
            timeoutMs,
          });
        } else {
          const armed = await armBackgroundSnapshot(hv, { domain, file, timeoutMs: 10_000 });
          resumed = armed.resumedByQemu;
          armSteps = armed.steps;
        }
        t3 = performance.now();
      } finally {
        if (!resumed) await hv.resume(domain);
        t4 = performance.now();
      }
    } finally {
      await hv.fsThaw(domain);
    }
    const t5 = performance.now();
    let imageBytes: number;
    let stallWhileWriting: WriterStall | undefined;
    if (mode === "background") {
      const image = await finishBackgroundSnapshot(hv, { domain, file, timeoutMs, pollMs: 50 });
      imageBytes = image.bytes;
      qemuDowntimeMs = image.qemuDowntimeMs;
      qemuSetupMs = image.qemuSetupMs;
      stallWhileWriting = watch.stall(t5, performance.now());
    } else {
      imageBytes = statSync(file).size;
      // The libvirt metadata only; the caller keeps (or removes) the file.
      await hv.deleteSnapshot(domain, "vmsnap-probe.memory", SnapshotDeleteFlags.MetadataOnly);
    }
    const t6 = performance.now();
    await waitForLines(watch, 3);
    return {
      mode,
      pausedMs: Math.round(t4 - t1),
      diskMs: Math.round(t2 - t1),
      memoryWhilePausedMs: Math.round(t3 - t2),
      frozenMs: Math.round(t5 - t0),
      qemuDowntimeMs,
      qemuSetupMs,
      totalMs: Math.round(t6 - t0),
      imageBytes,
      prepareMs,
      armSteps,
      seqBeforePause,
      stallAtPause: watch.stall(t0, t5),
      stallWhileWriting,
    };
  } finally {
    watch.stop();
  }
}

async function libvirtLiveCycle(
  hv: Hypervisor,
  domain: string,
  file: string,
  watch: ConsoleWatch,
  timeoutMs: number,
): Promise<MemoryCycle> {
  const name = "vmsnap-probe-live";
  const xml = memorySnapshotXml({ name, file, domainTargets: ["vda"] });
  watch.poll();
  const seqBeforePause = watch.lines.at(-1)?.seq ?? 0;
  const t0 = performance.now();
  await hv.createSnapshot(domain, xml, SnapshotCreateFlags.Live, { timeoutMs });
  const t1 = performance.now();
  const { stdout } = await run("virsh", ["-c", SYSTEM_URI, "domjobinfo", domain, "--completed"]);
  const downtime = /Total downtime:\s+(\d+)/.exec(stdout)?.[1];
  await hv.deleteSnapshot(domain, name, SnapshotDeleteFlags.MetadataOnly);
  const imageBytes = statSync(file).size;
  await waitForLines(watch, 3);
  const stall = watch.stall(t0, t1);
  return {
    mode: "libvirtLive",
    pausedMs: Number(downtime ?? NaN),
    diskMs: 0,
    memoryWhilePausedMs: Number(downtime ?? NaN),
    frozenMs: 0,
    qemuDowntimeMs: downtime === undefined ? undefined : Number(downtime),
    qemuSetupMs: undefined,
    totalMs: Math.round(t1 - t0),
    imageBytes,
    prepareMs: 0,
    armSteps: undefined,
    seqBeforePause,
    stallAtPause: stall,
    stallWhileWriting: stall,
  };
}

/** Waits until the watch saw `n` more writer lines (the guest runs and writes again). */
async function waitForLines(watch: ConsoleWatch, n: number, timeoutMs = 60_000): Promise<void> {
  watch.poll();
  const target = watch.lines.length + n;
  const deadline = Date.now() + timeoutMs;
  while (watch.lines.length < target) {
    if (Date.now() > deadline) throw new Error(`the guest's writer printed no ${n} lines`);
    await new Promise((r) => setTimeout(r, 50));
    watch.poll();
  }
}

/** Removes a cycle's image (and for paused mode libvirt's leftovers). */
export async function removeImage(hv: Hypervisor, domain: string, file: string): Promise<void> {
  await removeMemory(hv, { domain, name: "vmsnap-probe", file }).catch(() => undefined);
  await rm(file, { force: true });
}

export interface RestoreCheck {
  /** virDomainRestoreFlags(PAUSED) (ms). */
  readonly restoreMs: number;
  /** The domain's state right after the restore. */
  readonly stateAfterRestore: string;
  /** The writer's log on the restored disk, read in the restored guest: its sequence numbers. */
  readonly firstSeq: number;
  readonly lastSeq: number;
  readonly missing: readonly number[];
  readonly duplicates: readonly number[];
}

/**
 * Stops the guest and brings it back from `file` with its disk pointed at `diskCopy` (the disk of
 * the snapshot's instant), paused; resumes, thaws (the image was taken frozen), and reads the
 * writer's log in the restored guest once the writer wrote a few more lines.
 */
export async function restoreAndCheck(
  hv: Hypervisor,
  guest: Guest,
  file: string,
  diskCopy: string,
): Promise<RestoreCheck> {
  const disk = guest.disks.find((d) => d.kind === "file");
  if (!disk || disk.kind !== "file") throw new Error(`${guest.name} has no file disk`);
  const head = Buffer.alloc(1024 * 1024);
  const handle = await open(file, "r");
  try {
    await handle.read(head, 0, head.length, 0);
  } finally {
    await handle.close();
  }
  const header = parseSaveImageHeader(head);
  if (!header.xml.includes(`'${disk.path}'`)) throw new Error(`image XML lacks ${disk.path}`);
  const xml = header.xml.replace(`'${disk.path}'`, `'${diskCopy}'`);
  await guest.destroy();
  const started = performance.now();
  await hv.restore(file, { xml, flags: SaveRestoreFlags.Paused, timeoutMs: 300_000 });
  const restoreMs = Math.round(performance.now() - started);
  const stateAfterRestore = (await hv.domainInfo(guest.name)).state;
  await hv.resume(guest.name);
  // The agent reconnects a moment after the resume; the image was taken frozen.
  for (let i = 0; ; i++) {
    try {
      await hv.fsThaw(guest.name, { timeoutMs: 5_000 });
      break;
    } catch (err) {
      if (i >= 20) throw err;
      await sleep(500);
    }
  }
  await sleep(1_500); // a few more writer lines, appended after the restored ones
  const records = await guestWriterLog(guest, "vda");
  const seen = new Set<number>();
  const duplicates: number[] = [];
  for (const r of records) {
    if (seen.has(r.seq)) duplicates.push(r.seq);
    seen.add(r.seq);
  }
  return {
    restoreMs,
    stateAfterRestore,
    firstSeq: records[0]?.seq ?? 0,
    lastSeq: records.at(-1)?.seq ?? 0,
    missing: sequenceGaps(records),
    duplicates,
  };
}
