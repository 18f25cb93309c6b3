// vmsnap's own metrics: what the dashboards and alerts in deploy/ read.
import { expect } from "chai";
import { createMetrics } from "../../../src/metrics/index.ts";
import { bucketBounds, parseExposition, samplesOf, valueOf } from "../../support/exposition.ts";

async function scrape(metrics: ReturnType<typeof createMetrics>) {
  return parseExposition(await metrics.registry.metrics());
}

describe("snapshot metrics", () => {
  it("buckets the frozen window from 10 ms to 5 min, with 10 s (default freezeTimeout) as a bound", async () => {
    const metrics = createMetrics(undefined, { defaultMetrics: false });
    metrics.guestFrozenSeconds.observe(0.8);
    metrics.guestFrozenSeconds.observe(11);
    const exposition = await scrape(metrics);
    const bounds = bucketBounds(exposition, "vmsnap_guest_frozen_seconds");
    expect(bounds[0]).to.equal(0.01);
    expect(bounds.at(-1)).to.equal(300);
    expect(bounds).to.include(10);
    expect(valueOf(exposition, "vmsnap_guest_frozen_seconds_bucket", { le: "1" })).to.equal(1);
    expect(valueOf(exposition, "vmsnap_guest_frozen_seconds_bucket", { le: "10" })).to.equal(1);
    expect(valueOf(exposition, "vmsnap_guest_frozen_seconds_bucket", { le: "+Inf" })).to.equal(2);
    expect(valueOf(exposition, "vmsnap_guest_frozen_seconds_sum")).to.be.closeTo(11.8, 1e-9);
  });

  it("records downtime and per-phase durations under the phase left", async () => {
    const metrics = createMetrics(undefined, { defaultMetrics: false });
    metrics.vmDowntimeSeconds.observe(42);
    metrics.phaseDurationSeconds.observe({ phase: "Frozen" }, 0.2);
    metrics.phaseDurationSeconds.observe({ phase: "MemorySaved" }, 30);
    const exposition = await scrape(metrics);
    expect(exposition.types.get("vmsnap_vm_downtime_seconds")).to.equal("histogram");
    expect(valueOf(exposition, "vmsnap_vm_downtime_seconds_count")).to.equal(1);
    expect(bucketBounds(exposition, "vmsnap_vm_downtime_seconds").at(-1)).to.be.at.least(300);
    const phaseCount = (phase: string) =>
      valueOf(exposition, "vmsnap_phase_duration_seconds_count", { phase });
    expect(phaseCount("Frozen")).to.equal(1);
    expect(phaseCount("MemorySaved")).to.equal(1);
  });

  it("counts finished snapshots by result and reason", async () => {
    const metrics = createMetrics(undefined, { defaultMetrics: false });
    metrics.snapshotsTotal.inc({ result: "succeeded", reason: "Succeeded" });
    metrics.snapshotsTotal.inc({ result: "failed", reason: "FreezeTimeout" });
    metrics.snapshotsTotal.inc({ result: "failed", reason: "FreezeTimeout" });
    metrics.snapshotsTotal.inc({ result: "failed", reason: "StorageError" });
    const exposition = await scrape(metrics);
    expect(exposition.types.get("vmsnap_snapshots_total")).to.equal("counter");
    const count = (result: string, reason: string) =>
      valueOf(exposition, "vmsnap_snapshots_total", { result, reason });
    expect(count("succeeded", "Succeeded")).to.equal(1);
    expect(count("failed", "FreezeTimeout")).to.equal(2);
    expect(count("failed", "StorageError")).to.equal(1);
  });

  it("exports thaw failures at zero before the first one, so an increase() alert sees the first", async () => {
    const metrics = createMetrics(undefined, { defaultMetrics: false });
    expect(valueOf(await scrape(metrics), "vmsnap_thaw_failures_total")).to.equal(0);
    metrics.thawFailuresTotal.inc();
    expect(valueOf(await scrape(metrics), "vmsnap_thaw_failures_total")).to.equal(1);
  });

  it("labels libvirt errors by numeric code and reason", async () => {
    const metrics = createMetrics(undefined, { defaultMetrics: false });
    metrics.libvirtErrorsTotal.inc({ code: 42, reason: "DomainNotFound" });
    const exposition = await scrape(metrics);
    expect(samplesOf(exposition, "vmsnap_libvirt_errors_total")).to.deep.equal([
      {
        name: "vmsnap_libvirt_errors_total",
        labels: { code: "42", reason: "DomainNotFound" },
        value: 1,
      },
    ]);
  });

  it("times storage operations by backend, operation and result", async () => {
    const metrics = createMetrics(undefined, { defaultMetrics: false });
    metrics.storageOperationSeconds.observe(
      { backend: "rbd", operation: "create", result: "success" },
      0.07,
    );
    const stop = metrics.storageOperationSeconds.startTimer({
      backend: "libvirt-file",
      operation: "remove",
      result: "timeout",
    });
    stop();
    const exposition = await scrape(metrics);
    const count = (labels: Record<string, string>) =>
      valueOf(exposition, "vmsnap_storage_operation_seconds_count", labels);
    expect(count({ backend: "rbd", operation: "create", result: "success" })).to.equal(1);
    expect(count({ backend: "libvirt-file", operation: "remove", result: "timeout" })).to.equal(1);
  });
});
