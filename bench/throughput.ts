// Benchmark: apply→Succeeded latency and throughput of many VMSnapshots through one controller
// process (the agent of one host) and the real API server, with what each snapshot costs: API
// writes (the API server's own apiserver_request_total), controller CPU (/proc) and the control
// plane's CPU.
//
// Run "noop": N snapshots over D test-driver domains, `--bench-storage noop` (no storage I/O, so
// the controller and the API server are what is measured). Run "ceph": a smaller count against
// real Ceph (RBD group snapshots, 2 disks per domain, paxos_propose_interval 0.01).
// Each run first takes `--serial` snapshots one at a time (latency of an otherwise idle
// controller), then keeps `--in-flight` snapshots applied and not yet final (closed loop: a new
// one is applied when one finishes), spread round-robin over the domains (one snapshot per domain
// at a time is the controller's rule, so a domain's next one waits).
//
// Usage: npx tsx bench/throughput.ts [--snapshots 1000] [--domains 250] [--in-flight 100]
//          [--ceph-snapshots 100] [--ceph-domains 25] [--serial 20] [--runs noop,ceph]
import { randomBytes } from "node:crypto";
import { parseArgs } from "node:util";
import { startCephCluster, type CephCluster } from "../test/support/ceph/cluster.ts";
import { getControlPlane, type ControlPlane } from "../test/support/kube/control-plane.ts";
import {
  testDomainXml,
  uniqueTestDomainName,
  useLibvirtTestHost,
} from "../test/support/libvirt/test-driver-host.ts";
import { onTeardown } from "../test/support/teardown.ts";
import {
  apiserverMetrics,
  controlPlaneCpu,
  delta,
  isWrite,
  meanLatencyMs,
  requestCounts,
} from "./lib/apiserver.ts";
import { createTestDomains, pool, SnapshotDriver, startBenchController } from "./lib/harness.ts";
import { formatLoad, LoadSampler, machineRecord, type MachineRecord } from "./lib/machine.ts";
import { cpuTimes, memoryOf } from "./lib/proc.ts";
import { sumOf, type Sample } from "../test/support/exposition.ts";
import { isMain, log, runBenchmark, writeResult } from "./lib/report.ts";
import { round, summarize, type Summary } from "./lib/stats.ts";

export const NAME = "throughput";

const RESOURCES = ["vmsnapshots", "events"];

export interface ThroughputRun {
  readonly storage: "noop" | "ceph";
  readonly snapshots: number;
  readonly domains: number;
  readonly inFlight: number;
  readonly succeeded: number;
  readonly failed: number;
  /** First create sent → last Succeeded seen by the bench's watch. */
  readonly totalSeconds: number;
  readonly perSecond: number;
  /** Create sent → the bench's watch shows Succeeded. */
  readonly applyToSucceededMs: Summary;
  /** Create sent → status.completionTime (the controller's clock, same machine). */
  readonly applyToCompletionMs: Summary;
  /** The same, one snapshot at a time before the loaded run. */
  readonly serialApplyToSucceededMs: Summary;
  /** Controller's workqueue: mean wait in the queue and mean reconcile, per processed key. */
  readonly queueWaitMeanMs: number;
  readonly workMeanMs: number;
  readonly reconciles: number;
  /** apiserver_request_total deltas over the loaded run, by "VERB resource[/subresource]". */
  readonly requests: Record<string, number>;
  /** The bench's own creates (POST vmsnapshots), left out of the controller's writes. */
  readonly benchCreates: number;
  readonly controllerWritesPerSnapshot: number;
  readonly controllerWritesBreakdownPerSnapshot: Record<string, number>;
  readonly controllerReadsPerSnapshot: number;
  readonly statusPatchServerMeanMs: number | undefined;
  /** CPU seconds per snapshot over the loaded run. */
  readonly cpuPerSnapshot: {
    readonly controller: number;
    /** Reaped children of the controller: the `rbd` CLI processes (0 with noop). */
    readonly controllerChildren: number;
    readonly guard: number;
    readonly apiserver: number;
    readonly etcd: number;
  };
  readonly controllerRssMiB: number;
  /** Events the API server had received when the last snapshot was seen Succeeded. */
  readonly eventsPostedByEnd: number;
  /** How long after the last Succeeded the controller's last Event arrived. */
  readonly eventsDrainedSeconds: number;
  readonly machine: MachineRecord;
}

export interface ThroughputResult {
  readonly benchmark: typeof NAME;
  readonly date: string;
  readonly setup: string;
  readonly runs: ThroughputRun[];
  readonly notes: string[];
}

async function runOne(
  cp: ControlPlane,
  libvirtUri: string,
  o: {
    storage: "noop" | "ceph";
    snapshots: number;
    domains: number;
    inFlight: number;
    serial: number;
  },
): Promise<ThroughputRun> {
  const load = new LoadSampler();
  let ceph: CephCluster | undefined;
  if (o.storage === "ceph") {
    log("starting Ceph (paxos_propose_interval 0.01)");
    ceph = await startCephCluster({ paxosProposeInterval: 0.01 });
    const c = ceph;
    onTeardown(() => c.stop());
  }
  const namespace = await cp.newNamespace(`bench-tp-${o.storage}`);
  const node = `tp-${o.storage}-${randomBytes(3).toString("hex")}`;

  log(`${o.storage}: creating ${o.domains} domains`);
  const domains = Array.from({ length: o.domains }, () => uniqueTestDomainName(`tp-${o.storage}`));
  const imagesOf = (d: string) => [0, 1].map((k) => `${ceph?.pool ?? "vms"}/${d}-d${k}`);
  if (ceph) {
    const c = ceph;
    await pool(
      4,
      domains.flatMap(imagesOf).map((image) => async () => {
        const r = await c.rbd(["create", "--size", "4", image]);
        if (r.code !== 0) throw new Error(`rbd create ${image}: ${r.stderr}`);
      }),
    );
  }
  await createTestDomains(
    libvirtUri,
    domains.map((name) => ({
      name,
      xml: testDomainXml({ name, rbdDisks: imagesOf(name), guestAgent: true }),
    })),
  );

  const controller = await startBenchController({
    cp,
    libvirtUri,
    node,
    namespace,
    storage: o.storage === "noop" ? "noop" : "real",
    ...(ceph ? { ceph, cephOpTimeoutSeconds: 30 } : {}),
    logLevel: "info",
  });
  const driver = new SnapshotDriver(cp.kubeConfig(), namespace);
  await driver.start();
  const spec = (i: number) => ({
    source: { domain: domains[i % domains.length]!, node },
  });

  // One at a time first: the latency of an idle controller.
  const serial: number[] = [];
  for (let i = 0; i < o.serial; i++) {
    const name = `serial-${i}`;
    await driver.create(name, spec(i));
    const f = await driver.finished(name, 120_000);
    serial.push(f.seenAt - driver.appliedAt.get(name)!);
  }

  log(`${o.storage}: ${o.snapshots} snapshots, ${o.inFlight} in flight`);
  const apiBefore = await apiserverMetrics(cp);
  const ctlBefore = await controller.metrics();
  const cpuBefore = cpuTimes(controller.process.pid);
  const guardPid = controller.guardPid();
  const guardBefore = guardPid ? cpuTimes(guardPid).self : 0;
  const cpBefore = controlPlaneCpu(cp);

  const started = Date.now();
  const names = Array.from({ length: o.snapshots }, (_, i) => `s-${i}`);
  const finished = await pool(
    o.inFlight,
    names.map((name, i) => async () => {
      await driver.create(name, spec(i));
      return driver.finished(name, 600_000);
    }),
  );
  const ended = Math.max(...finished.map((f) => f.seenAt));

  // The controller sends Events one at a time in the background: wait until they stop coming
  // (nothing new for 3 s), so they are counted, and record how far behind they were.
  const eventsPosted = async () =>
    requestCounts(await apiserverMetrics(cp), ["events"])["POST events"] ?? 0;
  const eventsBefore = requestCounts(apiBefore, ["events"])["POST events"] ?? 0;
  const eventsAtEnd = (await eventsPosted()) - eventsBefore;
  let lastCount = -1;
  let lastChange = Date.now();
  for (let waited = 0; waited < 300 && Date.now() - lastChange < 3_000; waited++) {
    const n = await eventsPosted();
    if (n !== lastCount) {
      lastCount = n;
      lastChange = Date.now();
    }
    await new Promise((r) => setTimeout(r, 500));
  }
  const eventsDrainedSeconds = Math.max(0, (lastChange - ended) / 1000);

  const cpuAfter = cpuTimes(controller.process.pid);
  const guardAfter = guardPid ? cpuTimes(guardPid).self : 0;
  const cpAfter = controlPlaneCpu(cp);
  const ctlAfter = await controller.metrics();
  const apiAfter = await apiserverMetrics(cp);
  const rss = memoryOf(controller.process.pid).rss;
  driver.stop();
  await controller.process.stop();
  if (ceph) await ceph.stop();

  const requests = delta(requestCounts(apiBefore, RESOURCES), requestCounts(apiAfter, RESOURCES));
  const benchCreates = o.snapshots;
  const controllerWrites: Record<string, number> = {};
  for (const [k, v] of Object.entries(requests)) {
    if (!isWrite(k)) continue;
    const n = k === "POST vmsnapshots" ? v - benchCreates : v;
    if (n !== 0) controllerWrites[k] = round(n / o.snapshots, 2);
  }
  const reads = Object.entries(requests)
    .filter(([k]) => k.startsWith("GET "))
    .reduce((a, [, v]) => a + v, 0);
  const q = (m: Sample[], n: string) => sumOf(m, n, { name: "vmsnapshot" });
  const processed =
    q(ctlAfter, "workqueue_work_duration_seconds_count") -
    q(ctlBefore, "workqueue_work_duration_seconds_count");
  const meanOf = (n: string) =>
    round(
      ((q(ctlAfter, `${n}_sum`) - q(ctlBefore, `${n}_sum`)) / Math.max(1, processed)) * 1000,
      1,
    );
  const ok = finished.filter((f) => f.snapshot.status?.phase === "Succeeded");
  const n = o.snapshots;
  return {
    storage: o.storage,
    snapshots: n,
    domains: o.domains,
    inFlight: o.inFlight,
    succeeded: ok.length,
    failed: n - ok.length,
    totalSeconds: round((ended - started) / 1000, 1),
    perSecond: round(n / ((ended - started) / 1000), 1),
    applyToSucceededMs: summarize(
      ok.map((f) => f.seenAt - driver.appliedAt.get(f.snapshot.metadata.name!)!),
      0,
    ),
    applyToCompletionMs: summarize(
      ok.map(
        (f) =>
          Date.parse(f.snapshot.status!.completionTime!) -
          driver.appliedAt.get(f.snapshot.metadata.name!)!,
      ),
      0,
    ),
    serialApplyToSucceededMs: summarize(serial, 0),
    queueWaitMeanMs: meanOf("workqueue_queue_duration_seconds"),
    workMeanMs: meanOf("workqueue_work_duration_seconds"),
    reconciles: processed,
    requests,
    benchCreates,
    controllerWritesPerSnapshot: round(
      Object.values(controllerWrites).reduce((a, b) => a + b, 0),
      2,
    ),
    controllerWritesBreakdownPerSnapshot: controllerWrites,
    controllerReadsPerSnapshot: round(reads / n, 2),
    statusPatchServerMeanMs: maybeRound(
      meanLatencyMs(apiBefore, apiAfter, {
        verb: "PATCH",
        resource: "vmsnapshots",
        subresource: "status",
      }),
    ),
    cpuPerSnapshot: {
      controller: round((cpuAfter.self - cpuBefore.self) / n, 4),
      controllerChildren: round((cpuAfter.children - cpuBefore.children) / n, 4),
      guard: round((guardAfter - guardBefore) / n, 4),
      apiserver: round((cpAfter.apiserver - cpBefore.apiserver) / n, 4),
      etcd: round((cpAfter.etcd - cpBefore.etcd) / n, 4),
    },
    controllerRssMiB: round(rss / 2 ** 20, 1),
    eventsPostedByEnd: eventsAtEnd,
    eventsDrainedSeconds: round(eventsDrainedSeconds, 1),
    machine: machineRecord(load.stop()),
  };
}

const maybeRound = (v: number | undefined) => (v === undefined ? undefined : round(v, 1));

export function formatTable(result: ThroughputResult): string {
  const lines = [
    "| storage | snapshots / domains / in flight | total (s) | per s | apply→Succeeded p50 / p99 (ms) | idle p50 (ms) | queue wait / reconcile mean (ms) | controller API writes per snapshot | CPU s per snapshot: controller (+rbd) / guard / apiserver / etcd | load avg |",
    "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
  ];
  for (const r of result.runs) {
    const c = r.cpuPerSnapshot;
    lines.push(
      `| ${r.storage} | ${r.snapshots} / ${r.domains} / ${r.inFlight} | ${r.totalSeconds} | ${r.perSecond} | ${r.applyToSucceededMs.p50} / ${r.applyToSucceededMs.p99} | ${r.serialApplyToSucceededMs.p50} | ${r.queueWaitMeanMs} / ${r.workMeanMs} | ${r.controllerWritesPerSnapshot} | ${c.controller}${c.controllerChildren ? ` (+${c.controllerChildren})` : ""} / ${c.guard} / ${c.apiserver} / ${c.etcd} | ${r.machine.load.mean} |`,
    );
  }
  for (const r of result.runs) {
    const parts = Object.entries(r.controllerWritesBreakdownPerSnapshot)
      .map(([k, v]) => `${k} ${v}`)
      .join(", ");
    lines.push(
      "",
      `${r.storage}: ${r.succeeded} succeeded, ${r.failed} failed; writes per snapshot: ${parts}; reads (GET) per snapshot ${r.controllerReadsPerSnapshot}; server-side status PATCH mean ${r.statusPatchServerMeanMs} ms; ${r.eventsPostedByEnd} Events sent by the last Succeeded, the last one ${r.eventsDrainedSeconds} s after it; controller RSS ${r.controllerRssMiB} MiB; load ${formatLoad(r.machine.load)}`,
    );
  }
  return lines.join("\n");
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      snapshots: { type: "string", default: "1000" },
      domains: { type: "string", default: "250" },
      "in-flight": { type: "string", default: "100" },
      "ceph-snapshots": { type: "string", default: "100" },
      "ceph-domains": { type: "string", default: "25" },
      serial: { type: "string", default: "20" },
      runs: { type: "string", default: "noop,ceph" },
    },
  });
  const [host, cp] = await Promise.all([useLibvirtTestHost(), getControlPlane()]);
  const runs: ThroughputRun[] = [];
  for (const storage of values.runs.split(",") as Array<"noop" | "ceph">) {
    runs.push(
      await runOne(cp, host.uri, {
        storage,
        snapshots: Number(storage === "noop" ? values.snapshots : values["ceph-snapshots"]),
        domains: Number(storage === "noop" ? values.domains : values["ceph-domains"]),
        inFlight: Number(values["in-flight"]),
        serial: Number(values.serial),
      }),
    );
  }
  const result: ThroughputResult = {
    benchmark: NAME,
    date: new Date().toISOString(),
    setup:
      "one controller process (defaults: 4 workers, 4 frozen guests) → session libvirtd test driver (every domain has a guest agent: freeze + thaw really happen); real kube-apiserver 1.37 + etcd on the same 2 cores; ceph run: RBD group snapshots of 2 images per domain, 1 mon + 1 memstore OSD, paxos 0.01",
    runs,
    notes: [
      "closed loop: a new VMSnapshot is created whenever one finishes, keeping --in-flight applied and not final",
      "API writes = delta of apiserver_request_total (POST/PUT/PATCH/DELETE/APPLY) on vmsnapshots, vmsnapshots/status and events, minus the bench's own creates; the bench writes nothing else",
      "CPU = utime+stime from /proc/<pid>/stat over the loaded run until the controller's Events stopped arriving; controller children = reaped rbd CLI processes",
    ],
  };
  const path = writeResult(NAME, result);
  console.log(formatTable(result));
  console.log(`\nwritten to ${path}`);
}

if (isMain(import.meta.url)) await runBenchmark(main);
