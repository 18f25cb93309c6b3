// Benchmark: VM downtime of memory snapshots (`memory: true`) on a real guest — the tiny test
// guest (QEMU TCG, 128 MiB RAM, qemu-ga, one ext4 qcow2 file disk, a writer every 0.2 s) on the
// machine's shared libvirtd — through the real controller process and API server.
//
// downtimeMs (status) = vCPUs paused (virDomainSuspend returned) → resumed (virDomainResume
// returned). Inside it: the file disk's external snapshot (vmsnap_storage_operation_seconds
// {backend="libvirt-file"}), the DisksSnapshotted status write, the memory image (libvirt
// external memory-only snapshot) and the resume. Each snapshot is deleted (deletionPolicy
// Delete: overlay committed, memory image removed) before the next, so the disk chain and the
// memory folder stay the same size from run to run.
//
// Usage: npx tsx bench/downtime.ts [--runs 5] [--warmup 1]
import { randomBytes } from "node:crypto";
import { parseArgs } from "node:util";
import { CustomObjectsApi } from "@kubernetes/client-node";
import {
  GROUP,
  PLURAL,
  VERSION,
  vmsnapshots,
  type VMSnapshot,
  type VMSnapshotStatus,
} from "../src/api/types.ts";
import { KubeObjectClient } from "../src/kube/object-client.ts";
import { getControlPlane } from "../test/support/kube/control-plane.ts";
import { launchGuest } from "../test/support/guest/index.ts";
import { SYSTEM_URI, useLibvirtd } from "../test/support/libvirt/libvirtd.ts";
import { waitFor } from "../test/support/processes.ts";
import { SnapshotDriver, startBenchController } from "./lib/harness.ts";
import { formatLoad, LoadSampler, machineRecord, type MachineRecord } from "./lib/machine.ts";
import { sumOf, type Sample } from "../test/support/exposition.ts";
import { isMain, log, runBenchmark, writeResult } from "./lib/report.ts";
import { round, summarize, type Summary } from "./lib/stats.ts";

export const NAME = "downtime";

interface Run {
  readonly warmup: boolean;
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
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      runs: { type: "string", default: "5" },
      warmup: { type: "string", default: "1" },
    },
  });
  const runs = Number(values.runs);
  const warmup = Number(values.warmup);
  const load = new LoadSampler();

  const [cp] = await Promise.all([getControlPlane(), useLibvirtd()]);
  log("launching the test guest");
  const guest = await launchGuest({ label: "bench-downtime" });
  const guestBootMs = await guest.waitForAgent(180_000);
  log(`guest ${guest.name} answers its agent after ${guestBootMs} ms`);

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
  let lastStatus: VMSnapshotStatus | undefined;
  for (let i = 0; i < warmup + runs; i++) {
    const name = `mem-${i}`;
    const before = await controller.metrics();
    await driver.create(name, {
      source: { domain: guest.name, node: controller.node },
      memory: true,
      quiesce: "Required",
      deletionPolicy: "Delete",
    });
    const finished = await driver.finished(name, 180_000);
    const after = await controller.metrics();
    const st = finished.snapshot.status;
    if (st?.phase !== "Succeeded" || st.downtimeMs === undefined) {
      throw new Error(`${name}: ${st?.phase} ${JSON.stringify(st?.error ?? st?.conditions)}`);
    }
    const d = (name: string, labels: Record<string, string>) =>
      (metric(after, name, labels) - metric(before, name, labels)) * 1000;
    const run: Run = {
      warmup: i < warmup,
      downtimeMs: st.downtimeMs,
      freezeDurationMs: st.freezeDurationMs!,
      fileSnapshotMs: round(
        d("vmsnap_storage_operation_seconds_sum", { backend: "libvirt-file", operation: "create" }),
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
    lastStatus = st;
    log(
      `  ${name}${run.warmup ? " (warm-up)" : ""}: downtime ${run.downtimeMs} ms, frozen ${run.freezeDurationMs} ms, file snapshot ${run.fileSnapshotMs} ms`,
    );
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

  const counted = samples.filter((s) => !s.warmup);
  const result: DowntimeResult = {
    benchmark: NAME,
    date: new Date().toISOString(),
    setup:
      "controller process (defaults) → qemu:///system; tiny guest: QEMU 7.2 TCG (no KVM), 128 MiB RAM, qemu-ga, 1 ext4 qcow2 disk with a writer; libvirt 9.0",
    runs,
    downtimeMs: summarize(counted.map((s) => s.downtimeMs)),
    freezeDurationMs: summarize(counted.map((s) => s.freezeDurationMs)),
    fileSnapshotMs: summarize(counted.map((s) => s.fileSnapshotMs)),
    disksSnapshottedPhaseMs: summarize(counted.map((s) => s.disksSnapshottedPhaseMs)),
    applyToSucceededMs: summarize(counted.map((s) => s.applyToSucceededMs)),
    memoryMiB: round((counted[0]?.memoryBytes ?? 0) / 2 ** 20, 1),
    statusWriteRoundTripMs: summarize(writes),
    guestBootMs,
    machine: machineRecord(load.stop()),
    samples,
    notes: [
      `${warmup} warm-up snapshot(s) not counted; each snapshot deleted (Delete policy) before the next`,
      "downtime = status.downtimeMs: suspend returned → resume returned; it holds the file-disk snapshot, the DisksSnapshotted status write, the memory image and the resume",
    ],
  };
  const path = writeResult(NAME, result);
  console.log(formatTable(result));
  console.log(`\nwritten to ${path}`);
}

export function formatTable(r: DowntimeResult): string {
  return [
    "| runs | downtime p50 / max (ms) | frozen p50 (ms) | file-disk snapshot p50 (ms) | status write + memory image + resume p50 (ms) | memory image (MiB) | one status write p50 (ms) | load avg |",
    "|---:|---:|---:|---:|---:|---:|---:|---:|",
    `| ${r.runs} | ${r.downtimeMs.p50} / ${r.downtimeMs.max} | ${r.freezeDurationMs.p50} | ${r.fileSnapshotMs.p50} | ${r.disksSnapshottedPhaseMs.p50} | ${r.memoryMiB} | ${r.statusWriteRoundTripMs.p50} | ${r.machine.load.mean} |`,
    "",
    `load ${formatLoad(r.machine.load)}; guest boot to agent ${r.guestBootMs} ms`,
  ].join("\n");
}

if (isMain(import.meta.url)) await runBenchmark(main);
