// Benchmark: many VMSnapshotSchedules due in the same minute on one agent (one host). 1,000
// schedules over 250 test-driver domains (4 per domain) all name the same minute T; the agent
// creates 1,000 runs at T and takes them, one domain at a time (its domain lock: a domain's 4
// runs queue behind each other), with `--bench-storage noop` so the agent and the API server are
// what is measured. Measured: from T until the bench's watch has seen every run Succeeded; when
// the runs were created (first seen by the watch, and the agent's own lateness histogram); the
// agent's RSS (VmRSS sampled every 250 ms from T to the end, and VmHWM), its CPU, and the API
// requests of the burst.
//
// The cron names T's minute, hour, day and month, so each schedule fires once (no second instant
// lands in the measurement however long it takes). They are created `--lead` seconds before T,
// and T is only used once every schedule's status says it is next (else the run is refused).
//
// Usage: npx tsx bench/schedules.ts [--schedules 1000] [--domains 250] [--lead 120]
//          [--modes compiled,tsx]
import { randomBytes } from "node:crypto";
import { setTimeout as sleep } from "node:timers/promises";
import { parseArgs } from "node:util";
import { CustomObjectsApi } from "@kubernetes/client-node";
import {
  SCHEDULE_KIND,
  SCHEDULE_PLURAL,
  type VMSnapshotSchedule,
} from "../src/api/schedule-types.ts";
import { GROUP, VERSION } from "../src/api/types.ts";
import { runName } from "../src/schedule/names.ts";
import { scrape, sumOf, type Sample } from "../test/support/exposition.ts";
import { getControlPlane, type ControlPlane } from "../test/support/kube/control-plane.ts";
import {
  testDomainXml,
  uniqueTestDomainName,
  useLibvirtTestHost,
} from "../test/support/libvirt/test-driver-host.ts";
import { apiserverMetrics, delta, isWrite, requestCounts } from "./lib/apiserver.ts";
import { deployedRuntime, startCompiledController } from "./lib/compiled.ts";
import {
  createTestDomains,
  pool,
  reusingKubeConfig,
  SnapshotDriver,
  startBenchController,
} from "./lib/harness.ts";
import { formatLoad, LoadSampler, machineRecord, type MachineRecord } from "./lib/machine.ts";
import { cpuTimes, memoryOf } from "./lib/proc.ts";
import { isMain, log, runBenchmark, writeResult } from "./lib/report.ts";
import { round, summarize, type Summary } from "./lib/stats.ts";

export const NAME = "schedules";

const RESOURCES = ["vmsnapshots", "vmsnapshotschedules", "events"];
const MiB = 2 ** 20;

export interface SchedulesRun {
  /** compiled: the bundle as the image runs it; tsx: as the tests run it. */
  readonly mode: "compiled" | "tsx";
  readonly runtime: string;
  readonly schedules: number;
  readonly domains: number;
  /** The instant every schedule named. */
  readonly instant: string;
  /** Creating the schedules (the bench's POSTs), and until the agent had planned every one. */
  readonly createSeconds: number;
  readonly plannedSeconds: number;
  readonly succeeded: number;
  readonly failed: number;
  /** Failed runs by status.error.reason. */
  readonly failedReasons: Record<string, number>;
  /** T → the bench's watch has shown every run Succeeded or Failed: the headline number. */
  readonly allFinalSeconds: number;
  /** T → the last run first seen by the bench's watch. */
  readonly allCreatedSeconds: number;
  /** T → each run first seen by the bench's watch (ms). */
  readonly createdAfterMs: Summary;
  /** The agent's vmsnap_schedule_run_lateness_seconds over the burst: mean, and how many. */
  readonly agentLatenessMeanMs: number;
  readonly agentRunsCreated: number;
  /** T → each run seen Succeeded (ms). */
  readonly succeededAfterMs: Summary;
  readonly rss: {
    /** VmRSS with every schedule planned, just before T. */
    readonly idleMiB: number;
    /** The highest VmRSS sampled from T to the end. */
    readonly burstPeakMiB: number;
    /** VmRSS when the last run was seen final. */
    readonly endMiB: number;
    /** VmHWM: the process's peak RSS since it started (schedule creation included). */
    readonly hwmMiB: number;
    readonly samples: number;
  };
  /** The agent's CPU seconds from T to the end. */
  readonly cpuSeconds: number;
  /** Reconciles from T to the end, by controller (each run wakes its schedule as it changes). */
  readonly reconciles: { readonly vmsnapshot: number; readonly vmsnapshotschedule: number };
  /** apiserver_request_total deltas from T to the end, by "VERB resource[/subresource]". */
  readonly requests: Record<string, number>;
  readonly writesPerRun: number;
  readonly machine: MachineRecord;
}

export interface SchedulesResult {
  readonly benchmark: typeof NAME;
  readonly date: string;
  readonly setup: string;
  readonly runs: SchedulesRun[];
  readonly notes: string[];
}

/** The agent, either way it can run: its pid, its metrics and how to stop it. */
interface Agent {
  readonly pid: number;
  readonly runtime: string;
  metrics(): Promise<Sample[]>;
  stop(): Promise<void>;
}

async function startAgent(
  mode: "compiled" | "tsx",
  o: { cp: ControlPlane; libvirtUri: string; node: string; namespace: string },
): Promise<Agent> {
  if (mode === "compiled") {
    const agent = await startCompiledController({
      kubeconfig: o.cp.kubeconfigPath,
      node: o.node,
      namespace: o.namespace,
      libvirtUri: o.libvirtUri,
      storage: "noop",
    });
    const runtime = deployedRuntime();
    return {
      pid: agent.pid,
      runtime: `node ${runtime.nodeFlags.join(" ")} dist/bundle (${Object.entries(runtime.env)
        .map(([k, v]) => `${k}=${v}`)
        .join(" ")})`,
      metrics: () => scrape(`http://127.0.0.1:${agent.metricsPort}/metrics`),
      stop: () => agent.stop(),
    };
  }
  const agent = await startBenchController({ ...o, storage: "noop", logLevel: "info" });
  return {
    pid: agent.process.pid,
    runtime: "tsx, as the tests start it",
    metrics: () => agent.metrics(),
    stop: () => agent.process.stop(),
  };
}

/** A cron expression that fires at `instant`'s minute (UTC) once a year. */
function onceAt(instant: Date): string {
  return `${instant.getUTCMinutes()} ${instant.getUTCHours()} ${instant.getUTCDate()} ${instant.getUTCMonth() + 1} *`;
}

async function runOne(
  cp: ControlPlane,
  libvirtUri: string,
  o: { mode: "compiled" | "tsx"; schedules: number; domains: number; leadSeconds: number },
): Promise<SchedulesRun> {
  const load = new LoadSampler();
  const namespace = await cp.newNamespace(`bench-sched-${o.mode}`);
  const node = `sched-${randomBytes(3).toString("hex")}`;
  log(`${o.mode}: creating ${o.domains} domains`);
  const domains = Array.from({ length: o.domains }, () => uniqueTestDomainName("sched"));
  await createTestDomains(
    libvirtUri,
    domains.map((name) => ({
      name,
      xml: testDomainXml({
        name,
        rbdDisks: [0, 1].map((k) => `vms/${name}-d${k}`),
        guestAgent: true,
      }),
    })),
  );
  const agent = await startAgent(o.mode, { cp, libvirtUri, node, namespace });
  const driver = new SnapshotDriver(cp.kubeConfig(), namespace);
  await driver.start();
  const api = reusingKubeConfig(cp.kubeConfig()).makeApiClient(CustomObjectsApi);
  try {
    const instant = new Date(Math.ceil((Date.now() + o.leadSeconds * 1000) / 60_000) * 60_000);
    const names = Array.from({ length: o.schedules }, (_, i) => `s-${i}`);
    log(`${o.mode}: ${o.schedules} schedules, all due at ${instant.toISOString()}`);
    const createStart = Date.now();
    await pool(
      16,
      names.map(
        (name, i) => () =>
          api.createNamespacedCustomObject({
            group: GROUP,
            version: VERSION,
            namespace,
            plural: SCHEDULE_PLURAL,
            body: {
              apiVersion: `${GROUP}/${VERSION}`,
              kind: SCHEDULE_KIND,
              metadata: { name, namespace },
              spec: {
                schedule: onceAt(instant),
                template: { source: { domain: domains[i % domains.length]!, node } },
              },
            },
          }),
      ),
    );
    const createSeconds = (Date.now() - createStart) / 1000;
    let planned = 0;
    while (planned < o.schedules) {
      if (Date.now() >= instant.getTime() - 2_000) {
        throw new Error(
          `only ${planned} of ${o.schedules} schedules planned for ${instant.toISOString()} 2 s before it: raise --lead`,
        );
      }
      const list = (await api.listNamespacedCustomObject({
        group: GROUP,
        version: VERSION,
        namespace,
        plural: SCHEDULE_PLURAL,
      })) as { items: VMSnapshotSchedule[] };
      planned = list.items.filter(
        (s) => s.status?.nextScheduleTime === instant.toISOString(),
      ).length;
      if (planned < o.schedules) await sleep(1_000);
    }
    const plannedSeconds = (Date.now() - createStart) / 1000;
    log(`${o.mode}: all planned after ${round(plannedSeconds)} s; waiting for the instant`);

    await sleep(instant.getTime() - 500 - Date.now());
    const idle = memoryOf(agent.pid).rss;
    const apiBefore = await apiserverMetrics(cp);
    const ctlBefore = await agent.metrics();
    const cpuBefore = cpuTimes(agent.pid).self;
    const rssSamples: number[] = [];
    const sampler = setInterval(() => rssSamples.push(memoryOf(agent.pid).rss), 250);

    const t = instant.getTime();
    const finished = await Promise.all(
      names.map((name) => driver.finished(runName(name, instant), 900_000)),
    );
    clearInterval(sampler);
    const ended = Math.max(...finished.map((f) => f.seenAt));
    const memory = memoryOf(agent.pid);
    const cpuAfter = cpuTimes(agent.pid).self;
    const ctlAfter = await agent.metrics();
    const apiAfter = await apiserverMetrics(cp);
    log(`${o.mode}: all ${o.schedules} final ${round((ended - t) / 1000)} s after the instant`);

    const created = finished.map((f) => driver.firstSeenAt.get(f.snapshot.metadata.name!)! - t);
    const ok = finished.filter((f) => f.snapshot.status?.phase === "Succeeded");
    const failedReasons: Record<string, number> = {};
    for (const f of finished) {
      if (f.snapshot.status?.phase !== "Failed") continue;
      const reason = f.snapshot.status.error?.reason ?? "unknown";
      failedReasons[reason] = (failedReasons[reason] ?? 0) + 1;
    }
    const lateness = (m: Sample[], suffix: string) =>
      sumOf(m, `vmsnap_schedule_run_lateness_seconds_${suffix}`);
    const reconciles = (m: Sample[], controller: string) =>
      sumOf(m, "controller_runtime_reconcile_total", { controller });
    const latenessCount = lateness(ctlAfter, "count") - lateness(ctlBefore, "count");
    const requests = delta(requestCounts(apiBefore, RESOURCES), requestCounts(apiAfter, RESOURCES));
    const writes = Object.entries(requests)
      .filter(([k]) => isWrite(k))
      .reduce((a, [, v]) => a + v, 0);
    return {
      mode: o.mode,
      runtime: agent.runtime,
      schedules: o.schedules,
      domains: o.domains,
      instant: instant.toISOString(),
      createSeconds: round(createSeconds),
      plannedSeconds: round(plannedSeconds),
      succeeded: ok.length,
      failed: finished.length - ok.length,
      failedReasons,
      allFinalSeconds: round((ended - t) / 1000),
      allCreatedSeconds: round(Math.max(...created) / 1000),
      createdAfterMs: summarize(created, 0),
      agentLatenessMeanMs: round(
        ((lateness(ctlAfter, "sum") - lateness(ctlBefore, "sum")) / Math.max(1, latenessCount)) *
          1000,
      ),
      agentRunsCreated: latenessCount,
      succeededAfterMs: summarize(
        ok.map((f) => f.seenAt - t),
        0,
      ),
      rss: {
        idleMiB: round(idle / MiB),
        burstPeakMiB: round(Math.max(idle, ...rssSamples) / MiB),
        endMiB: round(memory.rss / MiB),
        hwmMiB: round(memory.hwm / MiB),
        samples: rssSamples.length,
      },
      cpuSeconds: round(cpuAfter - cpuBefore, 2),
      reconciles: {
        vmsnapshot: reconciles(ctlAfter, "vmsnapshot") - reconciles(ctlBefore, "vmsnapshot"),
        vmsnapshotschedule:
          reconciles(ctlAfter, "vmsnapshotschedule") - reconciles(ctlBefore, "vmsnapshotschedule"),
      },
      requests,
      writesPerRun: round(writes / o.schedules, 2),
      machine: machineRecord(load.stop()),
    };
  } finally {
    driver.stop();
    await agent.stop();
  }
}

export function formatTable(result: SchedulesResult): string {
  const lines = [
    "| agent | schedules / domains | instant → all final (s) | → all runs created (s) | created after T p50 / max (ms) | Succeeded after T p50 / p99 (ms) | RSS idle / burst peak / VmHWM (MiB) | CPU (s) | API writes per run | load avg |",
    "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
  ];
  for (const r of result.runs) {
    lines.push(
      `| ${r.mode} | ${r.schedules} / ${r.domains} | ${r.allFinalSeconds} | ${r.allCreatedSeconds} | ${r.createdAfterMs.p50} / ${r.createdAfterMs.max} | ${r.succeededAfterMs.p50} / ${r.succeededAfterMs.p99} | ${r.rss.idleMiB} / ${r.rss.burstPeakMiB} / ${r.rss.hwmMiB} | ${r.cpuSeconds} | ${r.writesPerRun} | ${r.machine.load.mean} |`,
    );
  }
  for (const r of result.runs) {
    const parts = Object.entries(r.requests)
      .filter(([k]) => isWrite(k))
      .map(([k, v]) => `${k} ${v}`)
      .join(", ");
    lines.push(
      "",
      `${r.mode} (${r.runtime}): ${r.succeeded} succeeded, ${r.failed} failed${r.failed ? ` (${JSON.stringify(r.failedReasons)})` : ""}; schedules created in ${r.createSeconds} s, all planned ${r.plannedSeconds} s after the first create; the agent's own lateness mean ${r.agentLatenessMeanMs} ms over ${r.agentRunsCreated} runs; reconciles: ${r.reconciles.vmsnapshotschedule} of schedules, ${r.reconciles.vmsnapshot} of snapshots; writes during the burst: ${parts}; load ${formatLoad(r.machine.load)}`,
    );
  }
  return lines.join("\n");
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      schedules: { type: "string", default: "1000" },
      domains: { type: "string", default: "250" },
      lead: { type: "string", default: "120" },
      modes: { type: "string", default: "compiled,tsx" },
    },
  });
  const [host, cp] = await Promise.all([useLibvirtTestHost(), getControlPlane()]);
  const runs: SchedulesRun[] = [];
  for (const mode of values.modes.split(",") as Array<"compiled" | "tsx">) {
    runs.push(
      await runOne(cp, host.uri, {
        mode,
        schedules: Number(values.schedules),
        domains: Number(values.domains),
        leadSeconds: Number(values.lead),
      }),
    );
  }
  const result: SchedulesResult = {
    benchmark: NAME,
    date: new Date().toISOString(),
    setup:
      "one agent (defaults: 4 workers, 4 frozen guests), `--bench-storage noop` → session libvirtd test driver (every domain has a guest agent: freeze + thaw really happen); real kube-apiserver 1.37 + etcd on the same 2 cores",
    runs,
    notes: [
      "every schedule's cron names the same minute (UTC), so each fires once; concurrencyPolicy Forbid (default) applies per schedule, and the agent takes one snapshot of a domain at a time, so each domain's 4 runs queue behind each other",
      "times are from the scheduled instant to the bench's watch delivering the run (created: first seen; Succeeded: the final phase)",
      "RSS: VmRSS sampled every 250 ms from the instant until the last run was final; VmHWM is the process's peak since it started",
    ],
  };
  const path = writeResult(NAME, result);
  console.log(formatTable(result));
  console.log(`\nwritten to ${path}`);
}

if (isMain(import.meta.url)) await runBenchmark(main);
