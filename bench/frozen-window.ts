// Benchmark: how long the guest stays frozen, by number of RBD disks, through the real
// controller (a process, as deployed), the libvirt test driver hosted by a session libvirtd, a
// real Ceph cluster and the real API server; RBD group snapshots (the product) against the
// sequential per-image baseline (`--bench-storage sequential`, benchmark-only).
//
// Three views of every snapshot's frozen window:
// - status: `freezeDurationMs` = thaw returned − freeze returned, the controller's Date.now();
// - libvirt: the session libvirtd logs every virDomainFSFreeze/virDomainFSThaw it executes
//   (LIBVIRT_LOG_FILTERS=1:libvirt.domain, millisecond timestamps); on the test driver the call is
//   the guest's freeze, so thaw entry − freeze entry is the window as the "guest" saw it,
//   measured outside the controller;
// - the backend: the controller's own `vmsnap_storage_operation_seconds{backend="rbd",
//   operation="create"}` sum, scraped before and after each snapshot (exactly one create each).
// Controller overhead inside the window = window − backend create.
//
// Snapshots run one at a time (one domain per mode and disk count), modes interleaved so both
// see the same machine load. A warm-up snapshot per point is taken and not counted.
//
// Usage: npx tsx bench/frozen-window.ts [--paxos 0.01,1.0] [--snapshots 20] [--slow-snapshots 5]
//          [--disks 1,2,4,8] [--warmup 1]
// --slow-snapshots applies at paxos_propose_interval ≥ 0.5 s, where every Ceph snapshot op
// costs ~1 s (8 sequential image snapshots: ~8 s per snapshot).
import { randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import { parseArgs } from "node:util";
import { vmsnapshots, type VMSnapshot } from "../src/api/types.ts";
import { KubeObjectClient } from "../src/kube/object-client.ts";
import { Hypervisor } from "../src/hypervisor/connection.ts";
import { listGroupImages } from "../src/storage/rbd/groups.ts";
import { groupNameForDomainUUID } from "../src/storage/rbd/names.ts";
import { createRbdRunner } from "../src/storage/rbd/runner.ts";
import { startCephCluster, type CephCluster } from "../test/support/ceph/cluster.ts";
import { rbdConfigFor } from "../test/support/ceph/fixtures.ts";
import { getControlPlane, type ControlPlane } from "../test/support/kube/control-plane.ts";
import {
  testDomainXml,
  uniqueTestDomainName,
  useLibvirtTestHost,
} from "../test/support/libvirt/test-driver-host.ts";
import { onTeardown } from "../test/support/teardown.ts";
import { apiserverMetrics, meanLatencyMs } from "./lib/apiserver.ts";
import {
  createTestDomains,
  pool,
  SnapshotDriver,
  startBenchController,
  type BenchController,
} from "./lib/harness.ts";
import { formatLoad, LoadSampler, machineRecord, type MachineRecord } from "./lib/machine.ts";
import { sumOf, type Sample } from "../test/support/exposition.ts";
import { isMain, log, runBenchmark, writeResult } from "./lib/report.ts";
import { round, summarize, type Summary } from "./lib/stats.ts";

export const NAME = "frozen-window";

type Mode = "group" | "sequential";
const STORAGE_FLAG: Record<Mode, "real" | "sequential"> = {
  group: "real",
  sequential: "sequential",
};

interface Sampled {
  readonly mode: Mode;
  readonly disks: number;
  readonly warmup: boolean;
  readonly domain: string;
  readonly name: string;
  readonly statusWindowMs: number;
  readonly backendCreateMs: number;
  readonly applyToSeenMs: number;
  /** vmsnap_phase_duration_seconds{phase=Frozen}: freeze announced → disks snapshotted (status write, storage create). */
  readonly frozenPhaseMs: number;
  /** vmsnap_phase_duration_seconds{phase=DisksSnapshotted}: disks snapshotted → thaw returned (status write, thaw). */
  readonly disksSnapshottedPhaseMs: number;
  /** Filled from the libvirtd log after the run. */
  libvirtWindowMs?: number;
}

export interface Point {
  readonly mode: Mode;
  readonly disks: number;
  readonly snapshots: number;
  /** freezeDurationMs from status. */
  readonly statusWindowMs: Summary;
  /** libvirtd: virDomainFSThaw entry − virDomainFSFreeze entry. */
  readonly libvirtWindowMs: Summary;
  /** vmsnap_storage_operation_seconds{backend=rbd,operation=create}, per snapshot. */
  readonly backendCreateMs: Summary;
  /** status window − backend create. */
  readonly overheadMs: Summary;
  /** libvirt window − backend create. */
  readonly libvirtOverheadMs: Summary;
  /** Overhead before the storage call: Frozen phase − backend create (status write of Frozen, event, loop). */
  readonly beforeStorageMs: Summary;
  /** Overhead after it: the DisksSnapshotted phase (status write of DisksSnapshotted, event, loop, fsThaw). */
  readonly afterStorageMs: Summary;
  /** VMSnapshot created → the bench's watch sees Succeeded. */
  readonly applyToSucceededMs: Summary;
}

export interface IntervalRun {
  readonly paxosProposeInterval: number;
  readonly snapshotsPerPoint: number;
  readonly points: Point[];
  /** `rbd group image list` through the controller's runner: the membership check RbdBackend.create repeats inside the window. */
  readonly groupImageListMs: Summary;
  /** Server-side mean of the API server's PATCH vmsnapshots/status during this run. */
  readonly statusPatchServerMs: number | undefined;
  /** One status write as the controller makes it (KubeObjectClient.patchStatus), timed from this process right after the run. */
  readonly statusWriteRoundTripMs: Summary;
  readonly machine: MachineRecord;
  readonly samples: Sampled[];
}

export interface FrozenWindowResult {
  readonly benchmark: typeof NAME;
  readonly date: string;
  readonly setup: string;
  readonly runs: IntervalRun[];
  readonly notes: string[];
}

/** libvirtd's log, read back: each domain's freeze and thaw entry times, in order. */
function libvirtCalls(
  logFile: string,
): Map<string, Array<{ call: "freeze" | "thaw"; at: number }>> {
  const byDomain = new Map<string, Array<{ call: "freeze" | "thaw"; at: number }>>();
  const line =
    /^(\d{4}-\d\d-\d\d) (\d\d:\d\d:\d\d\.\d{3})\+0000: \d+: debug : virDomainFS(Freeze|Thaw):\d+ : .*\(VM: name=([^,]+),/;
  for (const text of readFileSync(logFile, "utf8").split("\n")) {
    const m = line.exec(text);
    if (!m) continue;
    const list = byDomain.get(m[4]!) ?? [];
    list.push({ call: m[3] === "Freeze" ? "freeze" : "thaw", at: Date.parse(`${m[1]}T${m[2]}Z`) });
    byDomain.set(m[4]!, list);
  }
  return byDomain;
}

/** Pairs each domain's freezes with the thaw that follows, in snapshot order. */
function attachLibvirtWindows(samples: Sampled[], logFile: string): void {
  const calls = libvirtCalls(logFile);
  const byDomain = new Map<string, Sampled[]>();
  for (const s of samples) byDomain.set(s.domain, [...(byDomain.get(s.domain) ?? []), s]);
  for (const [domain, list] of byDomain) {
    const windows: number[] = [];
    let frozenAt: number | undefined;
    for (const c of calls.get(domain) ?? []) {
      if (c.call === "freeze") frozenAt = c.at;
      else if (frozenAt !== undefined) {
        windows.push(c.at - frozenAt);
        frozenAt = undefined;
      }
    }
    if (windows.length !== list.length) {
      log(
        `libvirtd log: ${windows.length} freeze/thaw pairs for ${domain}, expected ${list.length}`,
      );
      continue;
    }
    list.forEach((s, i) => (s.libvirtWindowMs = windows[i]));
  }
}

async function snapshotOnce(
  driver: SnapshotDriver,
  controller: BenchController,
  domain: string,
  name: string,
): Promise<{
  snapshot: VMSnapshot;
  backendCreateMs: number;
  applyToSeenMs: number;
  frozenPhaseMs: number;
  disksSnapshottedPhaseMs: number;
}> {
  const createSum = (m: Sample[]) =>
    sumOf(m, "vmsnap_storage_operation_seconds_sum", { backend: "rbd", operation: "create" });
  const createCount = (m: Sample[]) =>
    sumOf(m, "vmsnap_storage_operation_seconds_count", { backend: "rbd", operation: "create" });
  const phaseSum = (m: Sample[], phase: string) =>
    sumOf(m, "vmsnap_phase_duration_seconds_sum", { phase });
  const before = await controller.metrics();
  await driver.create(name, {
    source: { domain, node: controller.node },
    quiesce: "Required",
    // The sequential baseline of 8 disks at Ceph's default paxos interval takes ~8 s frozen:
    // room for it, so the baseline is measured rather than cut off by the default 10 s.
    freezeTimeout: "60s",
  });
  const finished = await driver.finished(name, 180_000);
  const after = await controller.metrics();
  const s = finished.snapshot;
  if (s.status?.phase !== "Succeeded" || s.status.freezeDurationMs === undefined) {
    throw new Error(
      `${name}: ${s.status?.phase} ${JSON.stringify(s.status?.error ?? s.status?.conditions)}`,
    );
  }
  const creates = createCount(after) - createCount(before);
  if (creates !== 1) throw new Error(`${name}: ${creates} storage creates observed, expected 1`);
  return {
    snapshot: s,
    backendCreateMs: (createSum(after) - createSum(before)) * 1000,
    applyToSeenMs: finished.seenAt - driver.appliedAt.get(name)!,
    frozenPhaseMs: (phaseSum(after, "Frozen") - phaseSum(before, "Frozen")) * 1000,
    disksSnapshottedPhaseMs:
      (phaseSum(after, "DisksSnapshotted") - phaseSum(before, "DisksSnapshotted")) * 1000,
  };
}

async function runInterval(
  cp: ControlPlane,
  libvirtUri: string,
  paxos: number,
  o: { snapshots: number; warmup: number; disks: number[] },
): Promise<Omit<IntervalRun, "samples"> & { samples: Sampled[] }> {
  const load = new LoadSampler();
  log(`paxos_propose_interval ${paxos}: starting Ceph`);
  const ceph: CephCluster = await startCephCluster({ paxosProposeInterval: paxos });
  let cephStopped = false;
  const stopCeph = async () => {
    if (cephStopped) return;
    cephStopped = true;
    await ceph.stop();
  };
  onTeardown(stopCeph);
  const namespace = await cp.newNamespace("bench-fw");
  const tag = randomBytes(3).toString("hex");
  const controllers = {} as Record<Mode, BenchController>;
  for (const mode of ["group", "sequential"] as const) {
    controllers[mode] = await startBenchController({
      cp,
      libvirtUri,
      node: `fw-${mode}-${tag}`,
      namespace,
      storage: STORAGE_FLAG[mode],
      ceph,
      cephOpTimeoutSeconds: 30,
      logLevel: "info",
    });
  }
  const driver = new SnapshotDriver(cp.kubeConfig(), namespace);
  await driver.start();
  const apiBefore = await apiserverMetrics(cp);

  const samples: Sampled[] = [];
  const domainsOf = new Map<string, string>();
  for (const disks of o.disks) {
    // One domain (and its own images) per mode, so the modes never share images.
    const made: Array<{ mode: Mode; name: string; xml: string }> = [];
    for (const mode of ["group", "sequential"] as const) {
      const name = uniqueTestDomainName(`fw-${mode}-${disks}`);
      const images = Array.from({ length: disks }, (_, k) => `${ceph.pool}/${name}-d${k}`);
      await pool(
        4,
        images.map((image) => async () => {
          const r = await ceph.rbd(["create", "--size", "4", image]);
          if (r.code !== 0) throw new Error(`rbd create ${image}: ${r.stderr}`);
        }),
      );
      made.push({ mode, name, xml: testDomainXml({ name, rbdDisks: images, guestAgent: true }) });
      domainsOf.set(`${mode}/${disks}`, name);
    }
    await createTestDomains(libvirtUri, made);
    const total = o.warmup + o.snapshots;
    for (let i = 0; i < total; i++) {
      for (const { mode, name: domain } of made) {
        const name = `${mode.slice(0, 3)}-${disks}-${i}`;
        const r = await snapshotOnce(driver, controllers[mode], domain, name);
        samples.push({
          mode,
          disks,
          warmup: i < o.warmup,
          domain,
          name,
          statusWindowMs: r.snapshot.status!.freezeDurationMs!,
          backendCreateMs: round(r.backendCreateMs, 2),
          applyToSeenMs: r.applyToSeenMs,
          frozenPhaseMs: round(r.frozenPhaseMs, 2),
          disksSnapshottedPhaseMs: round(r.disksSnapshottedPhaseMs, 2),
        });
      }
    }
    const last = samples.filter((s) => s.disks === disks && !s.warmup);
    const med = (mode: Mode) =>
      summarize(last.filter((s) => s.mode === mode).map((s) => s.statusWindowMs)).p50;
    log(
      `  ${disks} disk(s): frozen p50 group ${med("group")} ms, sequential ${med("sequential")} ms`,
    );
  }
  const apiAfter = await apiserverMetrics(cp);

  // The membership check RbdBackend.create makes inside the window, timed on its own.
  const runner = createRbdRunner(rbdConfigFor(ceph, { opTimeoutSeconds: 30 }));
  const hv = await Hypervisor.open(libvirtUri);
  const { uuid } = await hv.domainInfo(domainsOf.get(`group/${o.disks.at(-1)}`)!);
  await hv.close();
  const group = { pool: ceph.pool, group: groupNameForDomainUUID(uuid) };
  const listMs: number[] = [];
  for (let i = 0; i < 5; i++) {
    const started = performance.now();
    await listGroupImages(runner, group);
    listMs.push(performance.now() - started);
  }

  driver.stop();
  for (const c of Object.values(controllers)) await c.process.stop();
  const statusWriteMs = await statusWriteRoundTrips(cp, samples.at(-1)!, namespace);
  await stopCeph();
  return {
    paxosProposeInterval: paxos,
    snapshotsPerPoint: o.snapshots,
    points: [],
    groupImageListMs: summarize(listMs),
    statusPatchServerMs: roundMaybe(
      meanLatencyMs(apiBefore, apiAfter, {
        verb: "PATCH",
        resource: "vmsnapshots",
        subresource: "status",
      }),
    ),
    statusWriteRoundTripMs: summarize(statusWriteMs),
    machine: machineRecord(load.stop()),
    samples,
  };
}

/**
 * What one status write costs the controller on this machine right now: the same client call
 * (KubeObjectClient.patchStatus, a conditional merge patch), 20 times in a row on a finished
 * snapshot whose controller is stopped, each changing a field so etcd really writes.
 */
async function statusWriteRoundTrips(
  cp: ControlPlane,
  last: Sampled,
  namespace: string,
): Promise<number[]> {
  const client = new KubeObjectClient<VMSnapshot>(cp.kubeConfig(), vmsnapshots);
  let snapshot = (await client.get(namespace, last.name))!;
  const status = snapshot.status!;
  const times: number[] = [];
  for (let i = 0; i < 20; i++) {
    const started = performance.now();
    snapshot = await client.patchStatus(snapshot, { ...status, freezeDurationMs: i });
    times.push(performance.now() - started);
  }
  return times;
}

const roundMaybe = (v: number | undefined) => (v === undefined ? undefined : round(v, 1));

function pointsOf(samples: readonly Sampled[], disks: readonly number[]): Point[] {
  const points: Point[] = [];
  for (const d of disks) {
    for (const mode of ["group", "sequential"] as const) {
      const s = samples.filter((x) => x.mode === mode && x.disks === d && !x.warmup);
      const withLibvirt = s.filter((x) => x.libvirtWindowMs !== undefined);
      points.push({
        mode,
        disks: d,
        snapshots: s.length,
        statusWindowMs: summarize(s.map((x) => x.statusWindowMs)),
        libvirtWindowMs: summarize(withLibvirt.map((x) => x.libvirtWindowMs!)),
        backendCreateMs: summarize(s.map((x) => x.backendCreateMs)),
        overheadMs: summarize(s.map((x) => x.statusWindowMs - x.backendCreateMs)),
        libvirtOverheadMs: summarize(
          withLibvirt.map((x) => x.libvirtWindowMs! - x.backendCreateMs),
        ),
        beforeStorageMs: summarize(s.map((x) => x.frozenPhaseMs - x.backendCreateMs)),
        afterStorageMs: summarize(s.map((x) => x.disksSnapshottedPhaseMs)),
        applyToSucceededMs: summarize(s.map((x) => x.applyToSeenMs)),
      });
    }
  }
  return points;
}

export function formatTable(result: FrozenWindowResult): string {
  const lines = [
    "| paxos (s) | disks | RBD snapshot | frozen p50 status / libvirtd (ms) | frozen max (ms) | backend create p50 (ms) | overhead p50 / p90 (ms) | of which before / after the storage call, p50 (ms) | apply→Succeeded p50 (ms) | load avg |",
    "|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|",
  ];
  for (const run of result.runs) {
    for (const p of run.points) {
      lines.push(
        `| ${run.paxosProposeInterval} | ${p.disks} | ${p.mode} | ${p.statusWindowMs.p50} / ${p.libvirtWindowMs.p50} | ${p.statusWindowMs.max} | ${p.backendCreateMs.p50} | ${p.overheadMs.p50} / ${p.overheadMs.p90} | ${p.beforeStorageMs.p50} / ${p.afterStorageMs.p50} | ${p.applyToSucceededMs.p50} | ${run.machine.load.mean} |`,
      );
    }
  }
  for (const run of result.runs) {
    lines.push(
      "",
      `paxos ${run.paxosProposeInterval}: ${run.snapshotsPerPoint} snapshots per point; one status write (controller's client) p50 ${run.statusWriteRoundTripMs.p50} ms (server-side PATCH mean ${run.statusPatchServerMs} ms); \`rbd group image list\` p50 ${run.groupImageListMs.p50} ms; load ${formatLoad(run.machine.load)}`,
    );
  }
  return lines.join("\n");
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      paxos: { type: "string", default: "0.01,1.0" },
      snapshots: { type: "string", default: "20" },
      "slow-snapshots": { type: "string", default: "5" },
      disks: { type: "string", default: "1,2,4,8" },
      warmup: { type: "string", default: "1" },
    },
  });
  const disks = values.disks.split(",").map(Number);
  const warmup = Number(values.warmup);

  // This process's libvirt is initialised before the log variables are set, so only the
  // daemon (started below, inheriting them) writes the call log; the controllers start after
  // they are removed again.
  await (await Hypervisor.open("test:///default")).close();
  const logFile = `/run/vmsnap/libvirt-test-host/${process.pid}/libvirtd-api.log`;
  process.env.LIBVIRT_LOG_FILTERS = "1:libvirt.domain";
  process.env.LIBVIRT_LOG_OUTPUTS = `1:file:${logFile}`;
  const host = await useLibvirtTestHost();
  delete process.env.LIBVIRT_LOG_FILTERS;
  delete process.env.LIBVIRT_LOG_OUTPUTS;
  const cp = await getControlPlane();

  const runs: IntervalRun[] = [];
  for (const paxos of values.paxos.split(",").map(Number)) {
    const snapshots = Number(paxos >= 0.5 ? values["slow-snapshots"] : values.snapshots);
    runs.push(await runInterval(cp, host.uri, paxos, { snapshots, warmup, disks }));
  }
  for (const run of runs) {
    attachLibvirtWindows(run.samples, logFile);
    run.points.push(...pointsOf(run.samples, disks));
  }
  const result: FrozenWindowResult = {
    benchmark: NAME,
    date: new Date().toISOString(),
    setup:
      "controller process (src/main.ts, defaults: 4 workers, 4 frozen guests) → session libvirtd test driver; real Ceph 16.2 (1 mon + 1 memstore OSD, loopback); real kube-apiserver + etcd; one snapshot at a time",
    runs,
    notes: [
      "status = freezeDurationMs (controller: thaw returned − freeze returned); libvirtd = FSThaw entry − FSFreeze entry in the daemon's debug log (ms resolution)",
      "backend create = vmsnap_storage_operation_seconds{backend=rbd,operation=create} delta per snapshot; overhead = window − backend create",
      `${warmup} warm-up snapshot(s) per point not counted; --snapshots at paxos < 0.5, --slow-snapshots at ≥ 0.5`,
      "spec.freezeTimeout 60s so the sequential baseline is not cut off at paxos 1.0",
    ],
  };
  const path = writeResult(NAME, result);
  console.log(formatTable(result));
  console.log(`\nwritten to ${path}`);
}

if (isMain(import.meta.url)) await runBenchmark(main);
