// Benchmark: what one API request costs the controller through @kubernetes/client-node's own
// KubeConfig, against the controller's ConnectionReusingKubeConfig (src/kube/kube-config.ts).
//
// client-node 2.0.1 calls KubeConfig.applySecurityAuthentication for every request, and that
// builds a new undici Agent (createDispatcher) each time — so every request opens a new TCP
// connection and does a full TLS handshake with the API server, and the old connection lingers
// until its idle timeout. The controller makes ~10 writes per snapshot and 2 of them inside the
// frozen window, which is why it shares one Agent instead. Measured here in isolation: the
// controller's own status write (KubeObjectClient.patchStatus) in a loop, the library's
// KubeConfig vs the shared connection, alternating, with the client's and the API server's CPU
// per request and the connections left established.
//
// Usage: npx tsx bench/api-client.ts [--requests 200] [--rounds 2]
import { execFileSync } from "node:child_process";
import { parseArgs } from "node:util";
import { vmsnapshots, type VMSnapshot } from "../src/api/types.ts";
import { KubeObjectClient } from "../src/kube/object-client.ts";
import { getControlPlane, type ControlPlane } from "../test/support/kube/control-plane.ts";
import { controlPlaneCpu } from "./lib/apiserver.ts";
import { reusingKubeConfig, SnapshotDriver } from "./lib/harness.ts";
import { formatLoad, LoadSampler, machineRecord, type MachineRecord } from "./lib/machine.ts";
import { isMain, log, runBenchmark, writeResult } from "./lib/report.ts";
import { round, summarize, type Summary } from "./lib/stats.ts";

export const NAME = "api-client";

export interface Variant {
  readonly connection: "new per request (client-node's KubeConfig)" | "reused (as shipped)";
  readonly requests: number;
  readonly latencyMs: Summary;
  readonly clientCpuMsPerRequest: number;
  readonly apiserverCpuMsPerRequest: number;
  /** TCP connections to the API server still established right after the loop. */
  readonly establishedAfter: number;
}

export interface ApiClientResult {
  readonly benchmark: typeof NAME;
  readonly date: string;
  readonly setup: string;
  readonly variants: Variant[];
  readonly machine: MachineRecord;
}

function established(port: string): number {
  const out = execFileSync("ss", ["-Htn", "state", "established", `( dport = :${port} )`], {
    encoding: "utf8",
  });
  return out.split("\n").filter((l) => l.trim() !== "").length;
}

async function measure(
  cp: ControlPlane,
  reuse: boolean,
  object: VMSnapshot,
  requests: number,
): Promise<Omit<Variant, "connection"> & { object: VMSnapshot }> {
  const kc = reuse ? reusingKubeConfig(cp.kubeConfig()) : cp.kubeConfig();
  const client = new KubeObjectClient<VMSnapshot>(kc, vmsnapshots);
  const port = new URL(cp.server).port;
  const status = object.status!;
  const times: number[] = [];
  const cpu0 = process.cpuUsage();
  const server0 = controlPlaneCpu(cp).apiserver;
  for (let i = 0; i < requests; i++) {
    const started = performance.now();
    object = await client.patchStatus(object, { ...status, freezeDurationMs: i });
    times.push(performance.now() - started);
  }
  const cpu = process.cpuUsage(cpu0);
  const server = controlPlaneCpu(cp).apiserver - server0;
  return {
    requests,
    latencyMs: summarize(times),
    clientCpuMsPerRequest: round((cpu.user + cpu.system) / 1000 / requests, 2),
    apiserverCpuMsPerRequest: round((server * 1000) / requests, 2),
    establishedAfter: established(port),
    object,
  };
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      requests: { type: "string", default: "200" },
      rounds: { type: "string", default: "2" },
    },
  });
  const load = new LoadSampler();
  const cp = await getControlPlane();
  const namespace = await cp.newNamespace("bench-api");
  const driver = new SnapshotDriver(cp.kubeConfig(), namespace);
  // An object no controller owns (node "nobody"): only this benchmark writes it.
  let object = await driver.create("probe", { source: { domain: "none", node: "nobody" } });
  object = await new KubeObjectClient<VMSnapshot>(
    reusingKubeConfig(cp.kubeConfig()),
    vmsnapshots,
  ).patchStatus(object, {
    phase: "Pending",
    freezeDurationMs: 0,
  });
  const variants: Variant[] = [];
  for (let round = 0; round < Number(values.rounds); round++) {
    for (const reuse of [false, true]) {
      // Let the previous round's connections close, so each round starts alike.
      await new Promise((r) => setTimeout(r, 5_000));
      const m = await measure(cp, reuse, object, Number(values.requests));
      object = m.object;
      const { object: _o, ...rest } = m;
      const variant: Variant = {
        connection: reuse ? "reused (as shipped)" : "new per request (client-node's KubeConfig)",
        ...rest,
      };
      variants.push(variant);
      log(
        `${variant.connection}: p50 ${variant.latencyMs.p50} ms, client CPU ${variant.clientCpuMsPerRequest} ms, apiserver CPU ${variant.apiserverCpuMsPerRequest} ms per request`,
      );
    }
  }
  const result: ApiClientResult = {
    benchmark: NAME,
    date: new Date().toISOString(),
    setup:
      "KubeObjectClient.patchStatus (the controller's status write: conditional JSON merge patch) in a loop from one process, @kubernetes/client-node 2.0.1, real kube-apiserver 1.37 on loopback TLS",
    variants,
    machine: machineRecord(load.stop()),
  };
  const path = writeResult(NAME, result);
  console.log(formatTable(result));
  console.log(`\nwritten to ${path}`);
}

export function formatTable(r: ApiClientResult): string {
  const lines = [
    "| connection | requests | status write p50 / p90 (ms) | client CPU per request (ms) | apiserver CPU per request (ms) | connections left open | load avg |",
    "|---|---:|---:|---:|---:|---:|---:|",
  ];
  for (const v of r.variants) {
    lines.push(
      `| ${v.connection} | ${v.requests} | ${v.latencyMs.p50} / ${v.latencyMs.p90} | ${v.clientCpuMsPerRequest} | ${v.apiserverCpuMsPerRequest} | ${v.establishedAfter} | ${r.machine.load.mean} |`,
    );
  }
  lines.push("", `load ${formatLoad(r.machine.load)}`);
  return lines.join("\n");
}

if (isMain(import.meta.url)) await runBenchmark(main);
