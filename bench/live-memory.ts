// Benchmark: a memory snapshot's VM downtime against guest RAM, three ways (test/support/
// live-memory.ts): `paused` (today's design: RAM written while the vCPUs are paused),
// `background` (QEMU's background-snapshot: vCPUs paused only to arm write tracking, RAM written
// while the guest runs) and `libvirtLive` (libvirt's live snapshot: precopy, QEMU picks the final
// pause; no freeze, no disks). Real test guests (QEMU 7.2 TCG, libvirt 9.0) of 128 MiB to 2 GiB
// RAM, half of it (48 MiB of 128) filled with random data, a few MiB rewritten 10×/s, and the
// disk writer every 0.2 s; one guest at a time, removed before the next. Driven directly (not
// through the controller): bench/downtime.ts measures the controller's own paused path.
//
// Per size and mode, several runs (p50/max) of: vCPUs paused, frozen window, QEMU's downtime,
// total time, image size, and the writer's longest stall as seen from the host; for background
// one image per size is restored (virDomainRestoreFlags PAUSED) and the writer's log checked.
//
// Usage: npx tsx bench/live-memory.ts [--sizes 128,512,1024,2048] [--runs 3] [--churn 8]
//        [--modes paused,background,libvirtLive]
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { Hypervisor } from "../src/hypervisor/connection.ts";
import { launchGuest } from "../test/support/guest/index.ts";
import { SYSTEM_URI, useLibvirtd } from "../test/support/libvirt/libvirtd.ts";
import {
  type LiveMemoryMode,
  type MemoryCycle,
  type RestoreCheck,
  memoryCycle,
  removeImage,
  restoreAndCheck,
} from "../test/support/e2e/live-memory.ts";
import { loadAverage1m, LoadSampler, machineRecord, type MachineRecord } from "./lib/machine.ts";
import { isMain, log, runBenchmark, writeResult } from "./lib/report.ts";
import { round, summarize, type Summary } from "./lib/stats.ts";

export const NAME = "live-memory";
const ALL_MODES: readonly LiveMemoryMode[] = ["paused", "background", "libvirtLive"];

interface Run extends MemoryCycle {
  readonly memoryMiB: number;
  readonly load1m: number;
}

interface ModeSummary {
  readonly mode: LiveMemoryMode;
  readonly pausedMs: Summary;
  readonly memoryWhilePausedMs: Summary;
  readonly frozenMs: Summary;
  readonly qemuDowntimeMs: Summary | undefined;
  readonly qemuSetupMs: Summary | undefined;
  readonly totalMs: Summary;
  readonly imageMiB: number;
  readonly writerMaxGapAtPauseMs: Summary;
  readonly writerMaxGapWhileWritingMs: Summary | undefined;
  readonly writerNormalGapMs: number;
}

interface SizeResult {
  readonly memoryMiB: number;
  readonly dirtiedMiB: number;
  readonly guestReport: string;
  readonly modes: ModeSummary[];
  readonly restore: RestoreCheck | { readonly error: string };
  readonly load1m: Summary;
}

export interface LiveMemoryResult {
  readonly benchmark: typeof NAME;
  readonly date: string;
  readonly setup: string;
  readonly runs: number;
  readonly churnMiB: number;
  readonly sizes: SizeResult[];
  readonly machine: MachineRecord;
  readonly samples: Run[];
  readonly notes: string[];
}

export function dirtyFor(memoryMiB: number): number {
  // Half the RAM; the 128 MiB guest has ~36 MiB in kernel and initramfs, so 48 MiB there.
  return memoryMiB <= 128 ? 48 : memoryMiB / 2;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      sizes: { type: "string", default: "128,512,1024,2048" },
      runs: { type: "string", default: "3" },
      churn: { type: "string", default: "8" },
      modes: { type: "string", default: ALL_MODES.join(",") },
    },
  });
  const MODES = values.modes.split(",") as LiveMemoryMode[];
  if (!MODES.every((m) => ALL_MODES.includes(m))) throw new Error(`--modes: ${values.modes}`);
  const sizes = values.sizes.split(",").map(Number);
  const runs = Number(values.runs);
  const churnMiB = Number(values.churn);
  const load = new LoadSampler();
  await useLibvirtd();
  const hv = await Hypervisor.open(SYSTEM_URI, { callTimeoutMs: 600_000 });
  const work = mkdtempSync(join(tmpdir(), "vmsnap-live-memory-"));
  const samples: Run[] = [];
  const results: SizeResult[] = [];
  try {
    for (const memoryMiB of sizes) {
      const dirtyMiB = dirtyFor(memoryMiB);
      log(`${memoryMiB} MiB guest, ${dirtyMiB} MiB dirtied, ${churnMiB} MiB churned`);
      const fileOf = (mode: LiveMemoryMode) => join(work, `mem-${memoryMiB}-${mode}.img`);
      const diskCopy = join(work, `vda-${memoryMiB}.qcow2`);
      const guest = await launchGuest({
        label: `live-${memoryMiB}`,
        memoryMiB,
        dirtyMiB,
        churnMiB,
      });
      try {
        await guest.waitForReady(600_000);
        const report = (await guest.waitForConsole(/^vmsnap-guest: dirtied .*$/m, 10_000))[0];
        log(`  ${report}`);
        const mine: Run[] = [];
        for (let r = 0; r < runs; r++) {
          for (const mode of MODES) {
            const load1m = loadAverage1m();
            const file = fileOf(mode);
            const copy = mode === "background" ? diskCopy : `${diskCopy}.${mode}`;
            const cycle = await memoryCycle({ mode, hv, guest, file, diskCopy: copy });
            const run: Run = { ...cycle, memoryMiB, load1m };
            mine.push(run);
            samples.push(run);
            log(
              `  ${mode} #${r + 1}: paused ${run.pausedMs} ms (memory part ${run.memoryWhilePausedMs}), frozen ${run.frozenMs} ms, qemu downtime ${run.qemuDowntimeMs ?? "-"} ms${run.qemuSetupMs === undefined ? "" : ` (setup ${run.qemuSetupMs} ms)`}, total ${run.totalMs} ms, ${round(run.imageBytes / 2 ** 20)} MiB, writer gap ${run.stallAtPause.maxGapMs}/${run.stallWhileWriting?.maxGapMs ?? "-"} ms (normal ${run.stallAtPause.normalGapMs}), load ${load1m}${run.armSteps ? `, prepare ${run.prepareMs} ms, arm steps ${JSON.stringify(run.armSteps)}` : ""}`,
            );
            const last = r === runs - 1 && mode === "background";
            if (!last) await removeImage(hv, guest.name, file);
            if (mode !== "background") rmSync(copy, { force: true });
          }
        }
        let restore: RestoreCheck | { error: string };
        try {
          restore = await restoreAndCheck(hv, guest, fileOf("background"), diskCopy);
          log(`  restore: ${JSON.stringify(restore)}`);
        } catch (err) {
          restore = { error: String(err) };
          log(`  restore failed: ${String(err)}`);
        }
        results.push({
          memoryMiB,
          dirtiedMiB: Number(/dirtied (\d+) MiB/.exec(report)?.[1] ?? dirtyMiB),
          guestReport: report,
          modes: MODES.map((mode) =>
            summarizeMode(
              mode,
              mine.filter((s) => s.mode === mode),
            ),
          ),
          restore,
          load1m: summarize(
            mine.map((s) => s.load1m),
            2,
          ),
        });
      } finally {
        await guest.remove();
        for (const mode of MODES) rmSync(fileOf(mode), { force: true });
        rmSync(diskCopy, { force: true });
      }
    }
  } finally {
    await hv.close();
    rmSync(work, { recursive: true, force: true });
  }
  const result: LiveMemoryResult = {
    benchmark: NAME,
    date: new Date().toISOString(),
    setup:
      "libvirt 9.0 / QEMU 7.2 TCG (no KVM), 1 vCPU, test guest with qemu-ga, 1 ext4 qcow2 disk + writer every 0.2 s, RAM half filled with random data; driven through the vmsnap libvirt addon",
    runs,
    churnMiB,
    sizes: results,
    machine: machineRecord(load.stop()),
    samples,
    notes: [
      "pausedMs: suspend returned → vCPUs running again (resume returned; for background QEMU resumes them itself once write tracking is armed). It includes the stand-in disk snapshot (a copy of the 64 MiB qcow2, diskMs) — the real backends' snapshot goes there",
      "memoryWhilePausedMs: the memory mode's share of the pause (libvirt snapshot of the paused guest / arming the background snapshot)",
      "libvirtLive: pausedMs and qemuDowntimeMs are libvirt's 'Total downtime' (domjobinfo --completed); no freeze and no disk snapshot fit in that pause",
      "writer gap: longest interval between two writer lines on the console as the host saw them (polled every 5 ms); normal is the median interval before (0.2 s sleep + the write)",
    ],
  };
  const path = writeResult(NAME, result);
  console.log(formatTable(result));
  console.log(`\nwritten to ${path}`);
}

function summarizeMode(mode: LiveMemoryMode, runs: readonly Run[]): ModeSummary {
  const q = runs.map((r) => r.qemuDowntimeMs).filter((v): v is number => v !== undefined);
  const w = runs.map((r) => r.stallWhileWriting?.maxGapMs).filter((v) => v !== undefined);
  const setup = runs.map((r) => r.qemuSetupMs).filter((v) => v !== undefined);
  return {
    mode,
    pausedMs: summarize(runs.map((r) => r.pausedMs)),
    memoryWhilePausedMs: summarize(runs.map((r) => r.memoryWhilePausedMs)),
    frozenMs: summarize(runs.map((r) => r.frozenMs)),
    qemuDowntimeMs: q.length > 0 ? summarize(q) : undefined,
    qemuSetupMs: setup.length > 0 ? summarize(setup) : undefined,
    totalMs: summarize(runs.map((r) => r.totalMs)),
    imageMiB: round((runs[0]?.imageBytes ?? 0) / 2 ** 20, 1),
    writerMaxGapAtPauseMs: summarize(runs.map((r) => r.stallAtPause.maxGapMs)),
    writerMaxGapWhileWritingMs: w.length > 0 ? summarize(w) : undefined,
    writerNormalGapMs: runs[0]?.stallAtPause.normalGapMs ?? 0,
  };
}

export function formatTable(r: LiveMemoryResult): string {
  const rows = r.sizes.flatMap((s) =>
    s.modes.map(
      (m) =>
        `| ${s.memoryMiB} | ${s.dirtiedMiB} | ${m.mode} | ${m.pausedMs.p50} / ${m.pausedMs.max} | ${m.memoryWhilePausedMs.p50} | ${m.frozenMs.p50} / ${m.frozenMs.max} | ${m.qemuDowntimeMs ? `${m.qemuDowntimeMs.p50} / ${m.qemuDowntimeMs.max}` : "—"}${m.qemuSetupMs ? ` (setup ${m.qemuSetupMs.p50})` : ""} | ${m.totalMs.p50} | ${m.imageMiB} | ${m.writerMaxGapAtPauseMs.p50} / ${m.writerMaxGapWhileWritingMs?.p50 ?? "—"} (${m.writerNormalGapMs}) | ${s.load1m.p50} |`,
    ),
  );
  const restores = r.sizes.map((s) =>
    "error" in s.restore
      ? `${s.memoryMiB} MiB: restore failed: ${s.restore.error}`
      : `${s.memoryMiB} MiB: restored (PAUSED) in ${s.restore.restoreMs} ms, state ${s.restore.stateAfterRestore}; writer log seq ${s.restore.firstSeq}…${s.restore.lastSeq}, missing ${s.restore.missing.length}, duplicates ${s.restore.duplicates.length}`,
  );
  return [
    `| RAM (MiB) | dirtied (MiB) | mode | vCPUs paused p50 / max (ms) | memory part of the pause p50 (ms) | frozen p50 / max (ms) | QEMU downtime p50 / max (ms) (background: setup p50, inside the pause) | total p50 (ms) | image (MiB) | writer max gap at pause / while writing p50 (normal) (ms) | load 1 min p50 |`,
    "|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ...rows,
    "",
    `${r.runs} runs per size and mode, ${r.churnMiB} MiB rewritten 10×/s in the guest.`,
    "",
    "Background images restored with virDomainRestoreFlags(PAUSED), then resumed and thawed:",
    ...restores.map((l) => `- ${l}`),
  ].join("\n");
}

if (isMain(import.meta.url)) await runBenchmark(main);
