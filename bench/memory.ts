// Benchmark: the controller's resident memory with many VMSnapshots in its cache.
//
// The scenario is an agent restarting on a host with a long history: N finished snapshots of
// its node. They are made realistic and fast: one real snapshot is taken first (noop storage,
// test-driver domain) and its final status becomes the template; then N objects are created
// with the agent's finalizer and that status written through the status subresource (the only
// way to set status), while no controller for the node runs, so none does any work. A fresh
// controller then lists them all (paged), reconciles each once (final: nothing to do) and
// settles; RSS (VmRSS) is sampled after that, with the peak (VmHWM) and the same controller's
// RSS with an empty cache as the baseline.
//
// Usage: npx tsx bench/memory.ts [--objects 10000] [--concurrency 32] [--settle 15]
//          [--modes compiled,tsx]
import { randomBytes } from "node:crypto";
import { setTimeout as sleep } from "node:timers/promises";
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
import { SNAPSHOT_FINALIZER as FINALIZER } from "../src/snapshot/kind.ts";
import { KubeObjectClient } from "../src/kube/object-client.ts";
import { getControlPlane, type ControlPlane } from "../test/support/kube/control-plane.ts";
import {
  testDomainXml,
  uniqueTestDomainName,
  useLibvirtTestHost,
} from "../test/support/libvirt/test-driver-host.ts";
import { waitFor } from "../test/support/processes.ts";
import { apiserverMetrics, delta, isWrite, requestCounts } from "./lib/apiserver.ts";
import { deployedRuntime, startCompiledController } from "./lib/compiled.ts";
import {
  createTestDomains,
  pool,
  reusingKubeConfig,
  SnapshotDriver,
  startBenchController,
  type BenchController,
} from "./lib/harness.ts";
import { formatLoad, LoadSampler, machineRecord, type MachineRecord } from "./lib/machine.ts";
import { memoryOf } from "./lib/proc.ts";
import { scrape, sumOf } from "../test/support/exposition.ts";
import { isMain, log, runBenchmark, writeResult } from "./lib/report.ts";
import { quantile, round } from "./lib/stats.ts";

export const NAME = "memory";

export interface MemoryResult {
  readonly benchmark: typeof NAME;
  readonly date: string;
  readonly setup: string;
  readonly objects: number;
  /** Bytes of one object as the API server returns it (JSON, managedFields included). */
  readonly objectJsonBytes: number;
  /** That object, as the API server returned it. */
  readonly sampleObject: unknown;
  readonly createSeconds: number;
  readonly modes: ModeResult[];
  readonly machine: MachineRecord;
  readonly notes: string[];
}

export interface ModeResult {
  /** compiled: `node dist/bundle/main.js` (the bundle) as the Dockerfile runs it; tsx: as the tests run it. */
  readonly mode: "compiled" | "tsx";
  /** Node flags and environment it ran with. */
  readonly runtime: string;
  /** Controller start → /readyz (LIST of every object, startup thaw check, workers started). */
  readonly startToReadySeconds: number;
  /** The same controller with an empty cache (an empty namespace), same settle. */
  readonly baselineRssMiB: number;
  /** Median VmRSS over the sampling window after the settle. */
  readonly rssMiB: number;
  readonly rssSamplesMiB: number[];
  /** VmHWM: the peak RSS, reached while listing. */
  readonly peakRssMiB: number;
  readonly perObjectKiB: number;
  /** The V8 heap and external memory at the same moment (prom-client's nodejs_* gauges), MiB. */
  readonly heap: { used: number; total: number; external: number };
  /** Writes the controller made while holding them (should be none: all are final). */
  readonly controllerWrites: Record<string, number>;
  readonly reconciles: number;
}

const MiB = 2 ** 20;

interface Running {
  readonly runtime: string;
  readonly pid: number;
  readonly metricsUrl: string;
  stop(): Promise<void>;
}

async function startMode(
  mode: "compiled" | "tsx",
  cp: ControlPlane,
  libvirtUri: string,
  node: string,
  namespace: string,
): Promise<Running> {
  if (mode === "compiled") {
    const c = await startCompiledController({
      kubeconfig: cp.kubeconfigPath,
      node,
      namespace,
      libvirtUri,
      storage: "noop",
    });
    const rt = deployedRuntime();
    return {
      runtime: `node ${rt.nodeFlags.join(" ")} dist/bundle/main.js, ${Object.entries(rt.env)
        .map(([k, v]) => `${k}=${v}`)
        .join(" ")} (Dockerfile ENTRYPOINT, DaemonSet env)`,
      pid: c.pid,
      metricsUrl: `http://127.0.0.1:${c.metricsPort}/metrics`,
      stop: c.stop,
    };
  }
  const c = await startBenchController({
    cp,
    libvirtUri,
    node,
    namespace,
    storage: "noop",
    logLevel: "info",
  });
  return {
    runtime: "node --import tsx src/main.ts as test/support/controller/process.ts starts it",
    pid: c.process.pid,
    metricsUrl: `http://127.0.0.1:${c.process.metricsPort}/metrics`,
    stop: () => c.process.stop(),
  };
}

/** Median VmRSS over `seconds` one-second samples, with the samples. */
async function sampleRss(
  pid: number,
  seconds: number,
): Promise<{ median: number; samples: number[] }> {
  const samples: number[] = [];
  for (let i = 0; i < seconds; i++) {
    samples.push(memoryOf(pid).rss);
    await sleep(1_000);
  }
  return { median: quantile(samples, 0.5), samples };
}

/** Waits until the controller's queue is empty and nothing was reconciled for `quietMs`. */
async function settle(metricsUrl: string, quietMs: number): Promise<number> {
  let last = -1;
  let since = Date.now();
  let reconciles = 0;
  await waitFor(
    "the controller to settle",
    async () => {
      const m = await scrape(metricsUrl);
      reconciles = sumOf(m, "controller_runtime_reconcile_total", { controller: "vmsnapshot" });
      const depth = sumOf(m, "workqueue_depth", { name: "vmsnapshot" });
      if (reconciles !== last || depth > 0) {
        last = reconciles;
        since = Date.now();
      }
      return Date.now() - since >= quietMs;
    },
    300_000,
    500,
  );
  return reconciles;
}

async function templateStatus(
  cp: ControlPlane,
  libvirtUri: string,
  controller: BenchController,
): Promise<VMSnapshotStatus> {
  const domain = uniqueTestDomainName("mem-template");
  await createTestDomains(libvirtUri, [
    {
      name: domain,
      xml: testDomainXml({ name: domain, rbdDisks: ["vms/a", "vms/b"], guestAgent: true }),
    },
  ]);
  const driver = new SnapshotDriver(cp.kubeConfig(), controller.namespace);
  await driver.start();
  await driver.create("template", { source: { domain, node: controller.node } });
  const finished = await driver.finished("template", 60_000);
  driver.stop();
  if (finished.snapshot.status?.phase !== "Succeeded")
    throw new Error(`template snapshot: ${JSON.stringify(finished.snapshot.status)}`);
  return finished.snapshot.status;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      objects: { type: "string", default: "10000" },
      concurrency: { type: "string", default: "32" },
      settle: { type: "string", default: "15" },
      modes: { type: "string", default: "compiled,tsx" },
    },
  });
  const objects = Number(values.objects);
  const load = new LoadSampler();
  const [host, cp] = await Promise.all([useLibvirtTestHost(), getControlPlane()]);
  const namespace = await cp.newNamespace("bench-mem");
  const node = `mem-${randomBytes(3).toString("hex")}`;

  // The template: the final status of one real snapshot, taken by a controller of its own.
  const templateNamespace = await cp.newNamespace("bench-mem-t");
  const templateController = await startBenchController({
    cp,
    libvirtUri: host.uri,
    node,
    namespace: templateNamespace,
    storage: "noop",
    logLevel: "info",
  });
  const status = await templateStatus(cp, host.uri, templateController);
  await templateController.process.stop();
  log(`creating ${objects} finished VMSnapshots`);

  // N finished snapshots of this node, created while no controller for it runs.
  const kc = reusingKubeConfig(cp.kubeConfig());
  const api = kc.makeApiClient(CustomObjectsApi);
  const client = new KubeObjectClient<VMSnapshot>(kc, vmsnapshots);
  const created = Date.now();
  let objectJsonBytes = 0;
  let sampleObject: unknown;
  await pool(
    Number(values.concurrency),
    Array.from({ length: objects }, (_, i) => async () => {
      const name = `done-${i}`;
      const obj = (await api.createNamespacedCustomObject({
        group: GROUP,
        version: VERSION,
        namespace,
        plural: PLURAL,
        body: {
          apiVersion: `${GROUP}/${VERSION}`,
          kind: "VMSnapshot",
          metadata: { name, namespace, finalizers: [FINALIZER] },
          spec: { source: { domain: `vm-${i % 250}`, node } },
        },
      })) as VMSnapshot;
      const done = await client.patchStatus(obj, {
        ...status,
        snapshotName: `vmsnap-${obj.metadata.uid}`,
      });
      if (i === 0) {
        objectJsonBytes = JSON.stringify(done).length;
        sampleObject = done;
      }
    }),
  );
  const createSeconds = (Date.now() - created) / 1000;
  log(`created in ${round(createSeconds, 1)} s`);

  const emptyNamespace = await cp.newNamespace("bench-mem-e");
  const settleMs = Number(values.settle) * 1000;
  const results: ModeResult[] = [];
  for (const mode of values.modes.split(",") as Array<"compiled" | "tsx">) {
    // Baseline: the same program, same node, an empty namespace.
    const empty = await startMode(mode, cp, host.uri, node, emptyNamespace);
    await settle(empty.metricsUrl, 5_000);
    await sleep(settleMs);
    const baseline = await sampleRss(empty.pid, 5);
    await empty.stop();

    const apiBefore = await apiserverMetrics(cp);
    const startedAt = Date.now();
    const loaded = await startMode(mode, cp, host.uri, node, namespace);
    const startToReadySeconds = (Date.now() - startedAt) / 1000;
    const reconciles = await settle(loaded.metricsUrl, 5_000);
    await sleep(settleMs);
    const rss = await sampleRss(loaded.pid, 10);
    const peak = memoryOf(loaded.pid).hwm;
    const gauges = await scrape(loaded.metricsUrl);
    const gaugeMiB = (name: string) => round(sumOf(gauges, name) / MiB, 1);
    const apiAfter = await apiserverMetrics(cp);
    await loaded.stop();
    const requests = delta(
      requestCounts(apiBefore, ["vmsnapshots", "events"]),
      requestCounts(apiAfter, ["vmsnapshots", "events"]),
    );
    const r: ModeResult = {
      mode,
      runtime: loaded.runtime,
      startToReadySeconds: round(startToReadySeconds, 1),
      baselineRssMiB: round(baseline.median / MiB, 1),
      rssMiB: round(rss.median / MiB, 1),
      rssSamplesMiB: rss.samples.map((b) => round(b / MiB, 1)),
      peakRssMiB: round(peak / MiB, 1),
      perObjectKiB: round((rss.median - baseline.median) / objects / 1024, 2),
      heap: {
        used: gaugeMiB("nodejs_heap_size_used_bytes"),
        total: gaugeMiB("nodejs_heap_size_total_bytes"),
        external: gaugeMiB("nodejs_external_memory_bytes"),
      },
      controllerWrites: Object.fromEntries(Object.entries(requests).filter(([k]) => isWrite(k))),
      reconciles,
    };
    results.push(r);
    log(
      `${mode}: RSS ${r.rssMiB} MiB with ${objects} objects, ${r.baselineRssMiB} MiB empty; ` +
        `V8 heap used ${r.heap.used} of ${r.heap.total} MiB, external ${r.heap.external} MiB`,
    );
  }

  const result: MemoryResult = {
    benchmark: NAME,
    date: new Date().toISOString(),
    setup:
      "controller process (Node 24, defaults, --bench-storage noop) started with N finished VMSnapshots of its node in its namespace; real kube-apiserver 1.37",
    objects,
    objectJsonBytes,
    sampleObject,
    createSeconds: round(createSeconds, 1),
    modes: results,
    machine: machineRecord(load.stop()),
    notes: [
      "status of every object = the final status of one real snapshot (2 RBD disks), written through the status subresource; finalizer set as the agent does",
      `RSS = median of 10 one-second VmRSS samples after the queue emptied and ${values.settle} s more; baseline = same program, empty namespace, same settle (5 samples)`,
      "compiled = the bundle the image runs (tools/bundle.ts) under plain node and the deployment's node flags and runtime variables (Dockerfile ENTRYPOINT, DaemonSet env); tsx = src/main.ts under tsx, as the tests start it",
    ],
  };
  const path = writeResult(NAME, result);
  console.log(formatTable(result));
  console.log(`\nwritten to ${path}`);
}

export function formatTable(r: MemoryResult): string {
  const lines = [
    "| controller | objects in cache | RSS (MiB) | empty-cache RSS (MiB) | per object (KiB) | peak RSS (MiB) | start → ready (s) | writes while holding them | load avg |",
    "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
  ];
  for (const m of r.modes) {
    lines.push(
      `| ${m.mode} | ${r.objects} | ${m.rssMiB} | ${m.baselineRssMiB} | ${m.perObjectKiB} | ${m.peakRssMiB} | ${m.startToReadySeconds} | ${Object.values(m.controllerWrites).reduce((a, b) => a + b, 0)} | ${r.machine.load.mean} |`,
    );
  }
  lines.push(
    "",
    `one object ${r.objectJsonBytes} bytes of JSON; ${r.objects} created in ${r.createSeconds} s; load ${formatLoad(r.machine.load)}`,
  );
  return lines.join("\n");
}

if (isMain(import.meta.url)) await runBenchmark(main);
