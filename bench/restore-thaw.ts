// Benchmark: restoring a VM snapshot in place through the agent, on the real guest (QEMU TCG,
// qemu-ga with its fsfreeze hook, a qcow2 and an RBD disk with a writer on each). One memory
// snapshot is taken while the guest is frozen; then VMRestores bring it back again and again.
// Each restore's RAM image wakes up frozen, so each measures the promise "thawed right after the
// resume": status resumeToThawMs (vCPUs resumed → the agent confirmed `thawed`), the frozen
// filesystems the thaw found, and start → Succeeded.
//
// Target: resume → thaw ≤ 100 ms. Under TCG the first guest code paths after a restore run
// through the translator (docs/restore-facts.md); on KVM the number is expected far lower.
//
// --hook none boots qemu-ga without its fsfreeze hook, which splits the thaw's time into the
// ioctls and the hook (a fork/exec of a shell in a guest whose translated code is all gone).
//
// Usage: npx tsx bench/restore-thaw.ts [--runs 5] [--hook ok|none]
import { randomBytes } from "node:crypto";
import { parseArgs } from "node:util";
import { CustomObjectsApi } from "@kubernetes/client-node";
import type { VMRestore } from "../src/api/restore-types.ts";
import { GROUP, VERSION } from "../src/api/types.ts";
import { getCephCluster } from "../test/support/ceph/cluster.ts";
import { createRbdGuestDisk, launchGuest } from "../test/support/guest/index.ts";
import { getControlPlane } from "../test/support/kube/control-plane.ts";
import { SYSTEM_URI, useLibvirtd } from "../test/support/libvirt/libvirtd.ts";
import { waitFor } from "../test/support/processes.ts";
import { SnapshotDriver, startBenchController } from "./lib/harness.ts";
import { LoadSampler, loadAverage1m, machineRecord, type MachineRecord } from "./lib/machine.ts";
import { isMain, log, runBenchmark, writeResult } from "./lib/report.ts";
import { summarize, type Summary } from "./lib/stats.ts";

export const NAME = "restore-thaw";

export interface RestoreThawResult {
  readonly benchmark: typeof NAME;
  readonly runs: number;
  readonly resumeToThawMs: Summary;
  readonly restoreTotalMs: Summary;
  readonly machine: MachineRecord;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      runs: { type: "string", default: "5" },
      hook: { type: "string", default: "ok" },
    },
  });
  const runs = Number(values.runs);
  const hook = values.hook;
  if (hook !== "ok" && hook !== "none") throw new Error(`--hook ${hook}: ok or none`);
  const load = new LoadSampler();
  const [cp, ceph] = await Promise.all([getControlPlane(), getCephCluster(), useLibvirtd()]);
  const namespace = await cp.newNamespace("bench-rs");
  const controller = await startBenchController({
    cp,
    ceph,
    libvirtUri: SYSTEM_URI,
    node: `rs-${randomBytes(3).toString("hex")}`,
    namespace,
    storage: "real",
    logLevel: "info",
  });
  const driver = new SnapshotDriver(cp.kubeConfig(), namespace);
  await driver.start();
  const api = cp.kubeConfig().makeApiClient(CustomObjectsApi);
  const rbd = await createRbdGuestDisk(ceph);
  const guest = await launchGuest({
    label: "bench-restore",
    fileDisks: 1,
    rbdDisks: [rbd],
    hook,
  });
  const bootMs = await guest.waitForAgent(600_000);
  log(`guest ${guest.name} answers its agent after ${bootMs} ms`);
  await waitFor("the writers", () => guest.writerRecords("vdb").length >= 3, 60_000, 200);

  await driver.create("snap", {
    source: { domain: guest.name, node: controller.node },
    memory: true,
    quiesce: "Required",
  });
  const snap = (await driver.finished("snap", 180_000)).snapshot;
  if (snap.status?.phase !== "Succeeded")
    throw new Error(`snapshot: ${JSON.stringify(snap.status)}`);
  log(
    `memory snapshot: frozen ${snap.status.freezeDurationMs} ms, downtime ${snap.status.downtimeMs} ms`,
  );

  const samples: Array<{
    resumeToThawMs: number;
    thawedFilesystems: number;
    totalMs: number;
    load1m: number;
  }> = [];
  for (let i = 0; i < runs; i++) {
    const name = `back-${i}`;
    await api.createNamespacedCustomObject({
      group: GROUP,
      version: VERSION,
      namespace,
      plural: "vmrestores",
      body: {
        apiVersion: `${GROUP}/${VERSION}`,
        kind: "VMRestore",
        metadata: { name },
        spec: { snapshotName: "snap", target: { inPlace: {} }, stopRunningTarget: true },
      },
    });
    let restore: VMRestore | undefined;
    await waitFor(
      `${name} to finish`,
      async () => {
        restore = (await api.getNamespacedCustomObject({
          group: GROUP,
          version: VERSION,
          namespace,
          plural: "vmrestores",
          name,
        })) as VMRestore;
        return restore.status?.phase === "Succeeded" || restore.status?.phase === "Failed";
      },
      180_000,
      100,
    );
    const st = restore!.status!;
    if (st.phase !== "Succeeded") throw new Error(`${name}: ${JSON.stringify(st.error)}`);
    const sample = {
      resumeToThawMs: st.resumeToThawMs!,
      thawedFilesystems: st.thawedFilesystems ?? 0,
      totalMs: Date.parse(st.completionTime!) - Date.parse(st.startTime!),
      load1m: loadAverage1m(),
    };
    samples.push(sample);
    log(
      `  ${name}: resume → thaw ${sample.resumeToThawMs} ms (${sample.thawedFilesystems} filesystems were frozen), ` +
        `start → Succeeded ${sample.totalMs} ms, load ${sample.load1m}`,
    );
    // The restored guest writes again before the next restore takes it back.
    const seq = guest.writerRecords("vdb").at(-1)?.seq ?? 0;
    await waitFor(
      "the restored writer",
      () => (guest.writerRecords("vdb").at(-1)?.seq ?? 0) !== seq,
      60_000,
      100,
    );
  }
  driver.stop();
  await guest.remove();
  await controller.process.stop();

  const result: RestoreThawResult & Record<string, unknown> = {
    benchmark: NAME,
    date: new Date().toISOString(),
    setup:
      "one 128 MiB TCG guest (qcow2 vda + RBD vdb, writers on both), one memory snapshot, restored in place repeatedly",
    runs,
    fsfreezeHook: hook === "ok" ? "a shell script (fork/exec on freeze and thaw)" : "none",
    resumeToThawMs: summarize(samples.map((s) => s.resumeToThawMs)),
    restoreTotalMs: summarize(samples.map((s) => s.totalMs)),
    thawedFilesystems: samples.map((s) => s.thawedFilesystems),
    target: { resumeToThawMs: 100 },
    machine: machineRecord(load.stop()),
    samples,
  };
  const path = writeResult(hook === "ok" ? NAME : `${NAME}-no-hook`, result);
  log(
    `resume → thaw p50 ${result.resumeToThawMs.p50} ms (max ${result.resumeToThawMs.max}); ` +
      `restore p50 ${result.restoreTotalMs.p50} ms; target ≤ 100 ms: ${result.resumeToThawMs.p50 <= 100 ? "met" : "missed"}; ${path}`,
  );
}

if (isMain(import.meta.url)) await runBenchmark(main);
