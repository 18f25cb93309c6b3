// Benchmark: VM downtime of memory snapshots (`memory: true`) on a real guest — the tiny test
// guest (QEMU TCG, qemu-ga, one ext4 qcow2 file disk, a writer every 0.2 s) on the machine's
// shared libvirtd — through the real controller process and API server, for each guest RAM size
// asked for (default 128 MiB only; `--sizes 128,512,1024,2048`), one guest at a time. With
// `--dirty`, the guest first fills half its RAM (48 MiB of 128) with random data and keeps
// rewriting `--churn` MiB of it, so the image is not mostly zero pages.
//
// downtimeMs (status) = vCPUs paused (virDomainSuspend returned) → resumed (virDomainResume
// returned). Inside it: the file disk's external snapshot (vmsnap_storage_operation_seconds
// {backend="libvirt-file"}), the DisksSnapshotted status write, the memory image (libvirt
// external memory-only snapshot) and the resume. Each snapshot is deleted (deletionPolicy
// Delete: overlay committed, memory image removed) before the next, so the disk chain and the
// memory folder stay the same size from run to run.
//
// `--modes paused,live` runs each size in each spec.memoryMode (default paused only): Live pauses
// the vCPUs for the disk snapshots and QEMU's arming of its background snapshot, then writes RAM
// while the guest runs, so its downtimeMs is vCPUs paused → QEMU ran them again.
//
// Usage: npx tsx bench/downtime.ts [--runs 5] [--warmup 1] [--sizes 128,512] [--modes paused,live]
//        [--dirty] [--churn 8] [--result downtime-by-mode]
import { randomBytes } from "node:crypto";
import { parseArgs } from "node:util";
import { CustomObjectsApi } from "@kubernetes/client-node";
import {
  GROUP,
  PLURAL,
  VERSION,
  vmsnapshots,
  type MemoryMode,
  type VMSnapshot,
  type VMSnapshotStatus,
} from "../src/api/types.ts";
import { KubeObjectClient } from "../src/kube/object-client.ts";
import { getControlPlane } from "../test/support/kube/control-plane.ts";
import { launchGuest } from "../test/support/guest/index.ts";
import { SYSTEM_URI, useLibvirtd } from "../test/support/libvirt/libvirtd.ts";
import { waitFor } from "../test/support/processes.ts";
import { SnapshotDriver, startBenchController } from "./lib/harness.ts";
import { dirtyFor } from "./live-memory.ts";
import {
  formatLoad,
  loadAverage1m,
  LoadSampler,
  machineRecord,
  type MachineRecord,
} from "./lib/machine.ts";
import { sumOf, type Sample } from "../test/support/exposition.ts";
import { isMain, log, runBenchmark, writeResult } from "./lib/report.ts";
import { round, summarize, type Summary } from "./lib/stats.ts";

export const NAME = "downtime";

interface Run {
  readonly warmup: boolean;
  readonly guestMemoryMiB: number;
  readonly memoryMode: MemoryMode;
  readonly load1m: number;
  readonly downtimeMs: number;
  readonly freezeDurationMs: number;
  /** vmsnap_storage_operation_seconds{backend=libvirt-file,operation=create}. */
  readonly fileSnapshotMs: number;
  /** vmsnap_phase_duration_seconds{phase=DisksSnapshotted}: status write + memory image + resume. */
  readonly disksSnapshottedPhaseMs: number;
  readonly memoryBytes: number;
  readonly applyToSucceededMs: number;
}

export interface DowntimeResult {
  readonly benchmark: typeof NAME;
  readonly date: string;
  readonly setup: string;
  readonly runs: number;
  readonly downtimeMs: Summary;
  readonly freezeDurationMs: Summary;
  readonly fileSnapshotMs: Summary;
  readonly disksSnapshottedPhaseMs: Summary;
  readonly applyToSucceededMs: Summary;
  readonly memoryMiB: number;
  /** One status write as the controller makes it, timed from this process after the runs. */
  readonly statusWriteRoundTripMs: Summary;
  readonly guestBootMs: number;
  readonly machine: MachineRecord;
  readonly samples: Run[];
  readonly notes: string[];
  /** One block per guest RAM size; the top-level figures above are the first size's. */
  readonly sizes?: SizeBlock[];
  /** Snapshots that did not succeed (not in the figures). */
  readonly failures?: { guestMemoryMiB: number; name: string; failure: string }[];
}

export interface SizeBlock {
  readonly guestMemoryMiB: number;
  readonly memoryMode: MemoryMode;
  /** MiB of random data the guest wrote into its RAM before the runs (0: none). */
  readonly dirtiedMiB: number;
  readonly churnMiB: number;
  readonly downtimeMs: Summary;
  readonly freezeDurationMs: Summary;
  readonly fileSnapshotMs: Summary;
  readonly disksSnapshottedPhaseMs: Summary;
  readonly applyToSucceededMs: Summary;
  readonly memoryMiB: number;
  readonly guestBootMs: number;
  readonly load1m: Summary;
  /** Counted runs that did not succeed. */
  readonly failed: number;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      runs: { type: "string", default: "5" },
      warmup: { type: "string", default: "1" },
      sizes: { type: "string", default: "128" },
      dirty: { type: "boolean", default: false },
      churn: { type: "string", default: "8" },
      modes: { type: "string", default: "paused" },
      // Where the result goes under bench/results/ (make bench's table reads `downtime`).
      result: { type: "string", default: NAME },
    },
  });
  const modes = values.modes
    .split(",")
    .map((m): MemoryMode => (m.trim().toLowerCase() === "live" ? "Live" : "Paused"));
  const runs = Number(values.runs);
  const warmup = Number(values.warmup);
  const sizes = values.sizes.split(",").map(Number);
  const churnMiB = values.dirty ? Number(values.churn) : 0;
  const load = new LoadSampler();

  const [cp] = await Promise.all([getControlPlane(), useLibvirtd()]);

  const namespace = await cp.newNamespace("bench-dt");
  const controller = await startBenchController({
    cp,
    libvirtUri: SYSTEM_URI,
    node: `dt-${randomBytes(3).toString("hex")}`,
    namespace,
    storage: "real",
    logLevel: "info",
  });
  const driver = new SnapshotDriver(cp.kubeConfig(), namespace);
  await driver.start();
  const api = cp.kubeConfig().makeApiClient(CustomObjectsApi);

  const metric = (m: Sample[], name: string, labels: Record<string, string>) =>
    sumOf(m, name, labels);
  const samples: Run[] = [];
  const blocks: SizeBlock[] = [];
  const failures: { guestMemoryMiB: number; name: string; failure: string }[] = [];
  let lastStatus: VMSnapshotStatus | undefined;
  for (const guestMemoryMiB of sizes) {
    const dirtyMiB = values.dirty ? dirtyFor(guestMemoryMiB) : 0;
    log(
      `launching a ${guestMemoryMiB} MiB test guest (${dirtyMiB} MiB dirtied, ${churnMiB} MiB churned)`,
    );
    const guest = await launchGuest({
      label: `bench-downtime-${guestMemoryMiB}`,
      memoryMiB: guestMemoryMiB,
      dirtyMiB,
      churnMiB,
    });
    const guestBootMs = await guest.waitForAgent(600_000);
    await guest.waitForReady(600_000);
    const dirtied = dirtyMiB > 0 ? Number(/dirtied (\d+) MiB/.exec(guest.console())?.[1] ?? 0) : 0;
    log(
      `guest ${guest.name} answers its agent after ${guestBootMs} ms; ready, ${dirtied} MiB dirtied`,
    );
    for (const memoryMode of modes) {
      const mine: Run[] = [];
      for (let i = 0; i < warmup + runs; i++) {
        const name = `mem-${guestMemoryMiB}-${memoryMode.toLowerCase()}-${i}`;
        const before = await controller.metrics();
        await driver.create(name, {
          source: { domain: guest.name, node: controller.node },
          memory: true,
          memoryMode,
          quiesce: "Required",
          deletionPolicy: "Delete",
        });
        const finished = await driver.finished(name, 180_000);
        const after = await controller.metrics();
        const st = finished.snapshot.status;
        if (st?.phase !== "Succeeded" || st.downtimeMs === undefined) {
          // A failure is a result too (e.g. a RAM save longer than freezeTimeout): counted, shown.
          const failure = `${st?.phase}: ${JSON.stringify(st?.error ?? st?.conditions)}`;
          log(`  ${name}: ${failure}`);
          failures.push({ guestMemoryMiB, name, failure });
        } else {
          const d = (name: string, labels: Record<string, string>) =>
            (metric(after, name, labels) - metric(before, name, labels)) * 1000;
          const run: Run = {
            warmup: i < warmup,
            guestMemoryMiB,
            memoryMode,
            load1m: loadAverage1m(),
            downtimeMs: st.downtimeMs,
            freezeDurationMs: st.freezeDurationMs!,
            fileSnapshotMs: round(
              d("vmsnap_storage_operation_seconds_sum", {
                backend: "libvirt-file",
                operation: "create",
              }),
              1,
            ),
            disksSnapshottedPhaseMs: round(
              d("vmsnap_phase_duration_seconds_sum", { phase: "DisksSnapshotted" }),
              1,
            ),
            memoryBytes: st.memory?.bytes ?? 0,
            applyToSucceededMs: finished.seenAt - driver.appliedAt.get(name)!,
          };
          samples.push(run);
          mine.push(run);
          lastStatus = st;
          log(
            `  ${name}${run.warmup ? " (warm-up)" : ""}: ${memoryMode} downtime ${run.downtimeMs} ms, frozen ${run.freezeDurationMs} ms, file snapshot ${run.fileSnapshotMs} ms, image ${round(run.memoryBytes / 2 ** 20)} MiB, load ${run.load1m}`,
          );
        }
        // Delete it (the finalizer commits the overlay and removes the memory image) and wait until
        // it is gone, so every run starts from the same disk chain.
        await api.deleteNamespacedCustomObject({
          group: GROUP,
          version: VERSION,
          namespace,
          plural: PLURAL,
          name,
        });
        await waitFor(
          `${name} to be deleted`,
          async () => {
            try {
              await api.getNamespacedCustomObject({
                group: GROUP,
                version: VERSION,
                namespace,
                plural: PLURAL,
                name,
              });
              return false;
            } catch {
              return true;
            }
          },
          120_000,
          200,
        );
      }
      const counted = mine.filter((s) => !s.warmup);
      blocks.push({
        guestMemoryMiB,
        memoryMode,
        dirtiedMiB: dirtied,
        churnMiB,
        downtimeMs: summarize(counted.map((s) => s.downtimeMs)),
        freezeDurationMs: summarize(counted.map((s) => s.freezeDurationMs)),
        fileSnapshotMs: summarize(counted.map((s) => s.fileSnapshotMs)),
        disksSnapshottedPhaseMs: summarize(counted.map((s) => s.disksSnapshottedPhaseMs)),
        applyToSucceededMs: summarize(counted.map((s) => s.applyToSucceededMs)),
        memoryMiB: round((counted[0]?.memoryBytes ?? 0) / 2 ** 20, 1),
        guestBootMs,
        load1m: summarize(
          counted.map((s) => s.load1m),
          2,
        ),
        failed: failures.filter(
          (f) =>
            f.guestMemoryMiB === guestMemoryMiB &&
            f.name.includes(`-${memoryMode.toLowerCase()}-`) &&
            !f.name.endsWith("-0"),
        ).length,
      });
    }
    // One big TCG guest at a time: this one goes before the next boots.
    await guest.remove();
  }
  driver.stop();

  // What one status write costs here now (the DisksSnapshotted write sits inside the downtime).
  const client = new KubeObjectClient<VMSnapshot>(cp.kubeConfig(), vmsnapshots);
  const probe = await driver.create("status-write-probe", {
    source: { domain: "no-such-domain", node: "nobody" },
  });
  let obj = probe;
  const writes: number[] = [];
  for (let i = 0; i < 20; i++) {
    const started = performance.now();
    obj = await client.patchStatus(obj, { ...lastStatus!, freezeDurationMs: i });
    writes.push(performance.now() - started);
  }
  await controller.process.stop();

  const first = blocks[0]!;
  const result: DowntimeResult = {
    benchmark: NAME,
    date: new Date().toISOString(),
    setup: `controller process (defaults) → qemu:///system; tiny guest: QEMU 7.2 TCG (no KVM), ${sizes.join("/")} MiB RAM${values.dirty ? ` (half filled with random data, ${churnMiB} MiB rewritten 10×/s)` : ""}, qemu-ga, 1 ext4 qcow2 disk with a writer; libvirt 9.0`,
    runs,
    downtimeMs: first.downtimeMs,
    freezeDurationMs: first.freezeDurationMs,
    fileSnapshotMs: first.fileSnapshotMs,
    disksSnapshottedPhaseMs: first.disksSnapshottedPhaseMs,
    applyToSucceededMs: first.applyToSucceededMs,
    memoryMiB: first.memoryMiB,
    statusWriteRoundTripMs: summarize(writes),
    guestBootMs: first.guestBootMs,
    machine: machineRecord(load.stop()),
    samples,
    notes: [
      `${warmup} warm-up snapshot(s) not counted; each snapshot deleted (Delete policy) before the next`,
      "downtime = status.downtimeMs: suspend returned → resume returned (Paused: it holds the file-disk snapshot, the DisksSnapshotted status write, the memory image and the resume; Live: the file-disk snapshot and QEMU's arming, up to QEMU running the vCPUs again)",
      "top-level figures are the first size's; `sizes` has one block per guest RAM size, run one guest at a time",
    ],
    sizes: blocks,
    failures,
  };
  const path = writeResult(values.result, result);
  console.log(formatTable(result));
  console.log(`\nwritten to ${path}`);
}

export function formatTable(r: DowntimeResult): string {
  if (r.sizes && r.sizes.length > 1) return formatSizes(r, r.sizes);
  return [
    "| runs | downtime p50 / max (ms) | frozen p50 (ms) | file-disk snapshot p50 (ms) | status write + memory image + resume p50 (ms) | memory image (MiB) | one status write p50 (ms) | load avg |",
    "|---:|---:|---:|---:|---:|---:|---:|---:|",
    `| ${r.runs} | ${r.downtimeMs.p50} / ${r.downtimeMs.max} | ${r.freezeDurationMs.p50} | ${r.fileSnapshotMs.p50} | ${r.disksSnapshottedPhaseMs.p50} | ${r.memoryMiB} | ${r.statusWriteRoundTripMs.p50} | ${r.machine.load.mean} |`,
    "",
    `load ${formatLoad(r.machine.load)}; guest boot to agent ${r.guestBootMs} ms`,
  ].join("\n");
}

function formatSizes(r: DowntimeResult, sizes: readonly SizeBlock[]): string {
  return [
    "| guest RAM (MiB) | memoryMode | dirtied (MiB) | runs (failed) | downtime p50 / max (ms) | frozen p50 / max (ms) | file-disk snapshot p50 (ms) | status write + memory image + resume p50 (ms) | memory image (MiB) | load 1 min p50 (max) |",
    "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ...sizes.map(
      (b) =>
        `| ${b.guestMemoryMiB} | ${b.memoryMode ?? "Paused"} | ${b.dirtiedMiB} | ${r.runs} (${b.failed}) | ${b.downtimeMs.p50} / ${b.downtimeMs.max} | ${b.freezeDurationMs.p50} / ${b.freezeDurationMs.max} | ${b.fileSnapshotMs.p50} | ${b.disksSnapshottedPhaseMs.p50} | ${b.memoryMiB} | ${b.load1m.p50} (${b.load1m.max}) |`,
    ),
    "",
    ...(r.failures ?? []).map((f) => `- ${f.guestMemoryMiB} MiB, ${f.name}: ${f.failure}`),
    "",
    `load ${formatLoad(r.machine.load)}; one status write p50 ${r.statusWriteRoundTripMs.p50} ms; ${sizes.map((b) => `${b.guestMemoryMiB} MiB guest boot to agent ${b.guestBootMs} ms`).join(", ")}`,
  ].join("\n");
}

if (isMain(import.meta.url)) await runBenchmark(main);
