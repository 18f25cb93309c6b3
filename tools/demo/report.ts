// The end of the story: the snapshots as kubectl shows them, then each one's status spelled out
// (frozen window, downtime, disks, memory image, conditions), and the controller's metrics
// endpoint with a few series scraped from it live.
import type { VMSnapshot } from "../../src/api/types.ts";
import type { ControlPlane } from "../../test/support/kube/control-plane.ts";
import { block, clock, heading, line, mib } from "./say.ts";

/** `kubectl get vmsnapshots` (the printer columns), then each snapshot's status in detail. */
export async function printFinalStatus(
  cp: ControlPlane,
  namespace: string,
  names: readonly string[],
): Promise<void> {
  heading(`kubectl get vmsnapshots -n ${namespace}`);
  const table = await cp.kubectl(["get", "vmsnapshots", "-n", namespace]);
  block(table.code === 0 ? table.stdout : table.stderr);
  for (const name of names) {
    const got = await cp.kubectl(["get", "vmsnapshot", name, "-n", namespace, "-o", "json"]);
    if (got.code !== 0) throw new Error(`kubectl get vmsnapshot ${name}: ${got.stderr}`);
    heading(`status of ${name}`);
    block(statusSummary(JSON.parse(got.stdout) as VMSnapshot));
  }
}

/** The status of one snapshot as aligned `label  value` rows. */
export function statusSummary(snapshot: VMSnapshot): string {
  const st = snapshot.status ?? {};
  const at = (iso: string | undefined) => (iso ? clock(Date.parse(iso)) : "?");
  const rows: Array<[string, string]> = [
    ["phase", `${st.phase}${st.readyToUse ? " (readyToUse)" : ""}`],
    [
      "frozen window",
      st.freezeDurationMs !== undefined
        ? `${st.freezeDurationMs} ms  (${at(st.frozenAt)} → ${at(st.thawedAt)}, deadline was ${at(st.freezeDeadline)})`
        : "none: the guest was not frozen",
    ],
    [
      "VM downtime",
      st.downtimeMs !== undefined
        ? `${st.downtimeMs} ms  (vCPUs paused while disks and RAM were captured)`
        : "none: a disk snapshot never pauses the vCPUs",
    ],
    ["indications", (st.indications ?? []).join(", ")],
  ];
  for (const [i, d] of (st.disks ?? []).entries()) {
    rows.push([i === 0 ? "disks" : "", `${d.target}  ${d.backend.padEnd(12)} ${d.snapshot}`]);
  }
  rows.push([
    "memory",
    st.memory ? `${st.memory.file}  (${mib(st.memory.bytes)}, mode 0600)` : "none (memory: false)",
  ]);
  for (const [i, c] of (st.conditions ?? []).entries()) {
    const head = `${c.type}=${c.status}`.padEnd(18);
    rows.push([
      i === 0 ? "conditions" : "",
      `${head} ${c.reason}${c.message ? `: ${c.message}` : ""}`,
    ]);
  }
  if (st.error) rows.push(["error", `${st.error.reason}: ${st.error.message}`]);
  rows.push(["took", `${at(st.startTime)} → ${at(st.completionTime)}`]);
  return rows.map(([label, value]) => `${label.padEnd(14)} ${value}`).join("\n");
}

/** Series worth showing: what the snapshots cost the guest, how they ended, the reconcile loop. */
const INTERESTING: readonly RegExp[] = [
  /^vmsnap_guest_frozen_seconds_(count|sum) /,
  /^vmsnap_vm_downtime_seconds_(count|sum) /,
  /^vmsnap_snapshots_total\{/,
  /^vmsnap_guests_frozen /,
  /^vmsnap_storage_operation_seconds_count\{.*operation="create"/,
  /^controller_runtime_reconcile_total\{.*\} [1-9]/,
  /^workqueue_adds_total\{/,
  /^workqueue_depth\{/,
];

/** Where the metrics are, and the interesting series read from the live endpoint. */
export async function printMetrics(metricsPort: number): Promise<void> {
  const base = `http://127.0.0.1:${metricsPort}`;
  heading(`metrics: ${base}/metrics  (health: ${base}/healthz, ${base}/readyz)`);
  const response = await fetch(`${base}/metrics`);
  if (!response.ok) throw new Error(`GET ${base}/metrics: ${response.status}`);
  const lines = (await response.text()).split("\n");
  block(lines.filter((l) => INTERESTING.some((re) => re.test(l))).join("\n"));
  line("    (dashboards: deploy/grafana/vmsnap-dashboard.json; alerts: deploy/prometheus/)");
}
