// The API server's own view of the requests a benchmark caused: `apiserver_request_total`
// (counted by verb, resource and subresource) read through `kubectl get --raw /metrics`, and
// the CPU of the kube-apiserver and etcd processes of the benchmark's control plane.
import { readFileSync } from "node:fs";
import { dirname } from "node:path";
import type { ControlPlane } from "../../test/support/kube/control-plane.ts";
import { cpuTimes, processesMatching } from "./proc.ts";
import { parseExposition, type Sample } from "../../test/support/exposition.ts";

export const WRITE_VERBS = ["POST", "PUT", "PATCH", "DELETE", "APPLY"] as const;

export async function apiserverMetrics(cp: ControlPlane): Promise<Sample[]> {
  const r = await cp.kubectl(["get", "--raw", "/metrics"]);
  if (r.code !== 0) throw new Error(`kubectl get --raw /metrics: ${r.stderr}`);
  return [...parseExposition(r.stdout, { lenient: true }).samples];
}

/** Requests by "VERB resource[/subresource]" (any response code), for the resources given. */
export function requestCounts(
  samples: readonly Sample[],
  resources: readonly string[],
): Record<string, number> {
  const out: Record<string, number> = {};
  for (const s of samples) {
    if (s.name !== "apiserver_request_total") continue;
    if (!resources.includes(s.labels.resource ?? "")) continue;
    const key = `${s.labels.verb} ${s.labels.resource}${s.labels.subresource ? `/${s.labels.subresource}` : ""}`;
    out[key] = (out[key] ?? 0) + s.value;
  }
  return out;
}

/** after − before for every key (keys that did not change are left out). */
export function delta(
  before: Readonly<Record<string, number>>,
  after: Readonly<Record<string, number>>,
): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [k, v] of Object.entries(after)) {
    const d = v - (before[k] ?? 0);
    if (d !== 0) out[k] = d;
  }
  return out;
}

export function isWrite(key: string): boolean {
  return (WRITE_VERBS as readonly string[]).includes(key.split(" ")[0]!);
}

/** Server-side mean latency (ms) of one kind of request over an interval, from the duration histogram. */
export function meanLatencyMs(
  before: readonly Sample[],
  after: readonly Sample[],
  match: Readonly<Record<string, string>>,
): number | undefined {
  const pick = (samples: readonly Sample[], name: string) =>
    samples
      .filter((s) => s.name === name && Object.entries(match).every(([k, v]) => s.labels[k] === v))
      .reduce((a, s) => a + s.value, 0);
  const sum =
    pick(after, "apiserver_request_duration_seconds_sum") -
    pick(before, "apiserver_request_duration_seconds_sum");
  const count =
    pick(after, "apiserver_request_duration_seconds_count") -
    pick(before, "apiserver_request_duration_seconds_count");
  return count > 0 ? (sum / count) * 1000 : undefined;
}

/** CPU seconds (self) of this control plane's kube-apiserver and etcd, found by their run folder. */
export function controlPlaneCpu(cp: ControlPlane): { apiserver: number; etcd: number } {
  const runDir = dirname(cp.kubeconfigPath);
  let apiserver = 0;
  let etcd = 0;
  for (const pid of processesMatching(runDir)) {
    try {
      const program = readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0")[0] ?? "";
      if (program.endsWith("/kube-apiserver")) apiserver += cpuTimes(pid).self;
      else if (program.endsWith("/etcd")) etcd += cpuTimes(pid).self;
    } catch {
      // gone meanwhile
    }
  }
  return { apiserver, etcd };
}
