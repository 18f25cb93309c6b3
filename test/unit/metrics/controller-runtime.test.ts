// controller_runtime_* metrics must match controller-runtime's names, labels and buckets, or the
// dashboards built for Go controllers show nothing for vmsnap.
import { expect } from "chai";
import { createMetrics } from "../../../src/metrics/index.ts";
import { bucketBounds, parseExposition, samplesOf, valueOf } from "../../support/exposition.ts";

async function scrape(metrics: ReturnType<typeof createMetrics>) {
  return parseExposition(await metrics.registry.metrics());
}

describe("controller-runtime metrics", () => {
  it("exports each family under controller-runtime's name and type", async () => {
    const exposition = await scrape(createMetrics(undefined, { defaultMetrics: false }));
    expect(Object.fromEntries(exposition.types)).to.include({
      controller_runtime_reconcile_total: "counter",
      controller_runtime_reconcile_errors_total: "counter",
      controller_runtime_terminal_reconcile_errors_total: "counter",
      controller_runtime_reconcile_time_seconds: "histogram",
      controller_runtime_active_workers: "gauge",
      controller_runtime_max_concurrent_reconciles: "gauge",
    });
  });

  it("creates every result series at zero when a controller is bound, so the first error shows in rate()", async () => {
    const metrics = createMetrics(undefined, { defaultMetrics: false });
    metrics.forController("vmsnapshot", 3);
    const exposition = await scrape(metrics);
    const results = samplesOf(exposition, "controller_runtime_reconcile_total", {
      controller: "vmsnapshot",
    }).map((s) => [s.labels.result, s.value]);
    expect(Object.fromEntries(results)).to.deep.equal({
      success: 0,
      error: 0,
      requeue: 0,
      requeue_after: 0,
    });
    const labels = { controller: "vmsnapshot" };
    expect(valueOf(exposition, "controller_runtime_reconcile_errors_total", labels)).to.equal(0);
    expect(
      valueOf(exposition, "controller_runtime_terminal_reconcile_errors_total", labels),
    ).to.equal(0);
    expect(valueOf(exposition, "controller_runtime_max_concurrent_reconciles", labels)).to.equal(3);
    expect(valueOf(exposition, "controller_runtime_active_workers", labels)).to.equal(0);
  });

  it("counts reconciles under the controller and result they belong to", async () => {
    const metrics = createMetrics(undefined, { defaultMetrics: false });
    const snapshots = metrics.forController("vmsnapshot", 1);
    const other = metrics.forController("other", 1);
    snapshots.reconciled("requeue_after");
    snapshots.reconciled("requeue_after");
    snapshots.reconciled("error");
    snapshots.reconcileErrors.inc();
    snapshots.terminalReconcileErrors.inc();
    other.reconciled("success");
    snapshots.activeWorkers.inc();
    const exposition = await scrape(metrics);
    const total = (controller: string, result: string) =>
      valueOf(exposition, "controller_runtime_reconcile_total", { controller, result });
    expect(total("vmsnapshot", "requeue_after")).to.equal(2);
    expect(total("vmsnapshot", "error")).to.equal(1);
    expect(total("vmsnapshot", "success")).to.equal(0);
    expect(total("other", "success")).to.equal(1);
    const labels = { controller: "vmsnapshot" };
    expect(valueOf(exposition, "controller_runtime_reconcile_errors_total", labels)).to.equal(1);
    expect(
      valueOf(exposition, "controller_runtime_terminal_reconcile_errors_total", labels),
    ).to.equal(1);
    expect(valueOf(exposition, "controller_runtime_active_workers", labels)).to.equal(1);
  });

  it("buckets reconcile time exactly as controller-runtime: 5 ms to 60 s", async () => {
    const metrics = createMetrics(undefined, { defaultMetrics: false });
    metrics.forController("vmsnapshot", 1).reconcileTime.observe(0.3);
    const exposition = await scrape(metrics);
    const labels = { controller: "vmsnapshot" };
    const bounds = bucketBounds(exposition, "controller_runtime_reconcile_time_seconds", labels);
    expect(bounds).to.deep.equal([
      0.005, 0.01, 0.025, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.4, 0.45, 0.5, 0.6, 0.7, 0.8, 0.9,
      1, 1.25, 1.5, 1.75, 2, 2.5, 3, 3.5, 4, 4.5, 5, 6, 7, 8, 9, 10, 15, 20, 25, 30, 40, 50, 60,
    ]);
    const bucket = (le: string) =>
      valueOf(exposition, "controller_runtime_reconcile_time_seconds_bucket", { ...labels, le });
    expect(bucket("0.25")).to.equal(0);
    expect(bucket("0.3")).to.equal(1);
    expect(valueOf(exposition, "controller_runtime_reconcile_time_seconds_count", labels)).to.equal(
      1,
    );
  });
});
