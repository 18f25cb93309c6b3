// The schedule metrics the dashboard row and alerts read.
import { expect } from "chai";
import { createMetrics } from "../../../src/metrics/index.ts";
import { bucketBounds, parseExposition, samplesOf, valueOf } from "../../support/exposition.ts";

describe("schedule metrics", () => {
  it("exports every run result at zero before anything happened", async () => {
    const metrics = createMetrics(undefined, { defaultMetrics: false });
    const exposition = parseExposition(await metrics.registry.metrics());
    expect(exposition.types.get("vmsnap_schedule_runs_total")).to.equal("counter");
    for (const result of ["created", "skipped", "missed", "conflict"]) {
      expect(valueOf(exposition, "vmsnap_schedule_runs_total", { result }), result).to.equal(0);
    }
  });

  it("buckets lateness from 10 ms to 10 min and tracks retained snapshots per schedule", async () => {
    const metrics = createMetrics(undefined, { defaultMetrics: false });
    metrics.scheduleRunLatenessSeconds.observe(0.02);
    metrics.scheduleSnapshotsRetained.set({ namespace: "a", schedule: "db" }, 35);
    metrics.scheduleSnapshotsRetained.set({ namespace: "a", schedule: "gone" }, 1);
    metrics.scheduleSnapshotsRetained.remove({ namespace: "a", schedule: "gone" });
    const exposition = parseExposition(await metrics.registry.metrics());
    const bounds = bucketBounds(exposition, "vmsnap_schedule_run_lateness_seconds");
    expect([bounds[0], bounds.at(-1)]).to.deep.equal([0.01, 600]);
    expect(
      valueOf(exposition, "vmsnap_schedule_run_lateness_seconds_bucket", { le: "0.025" }),
    ).to.equal(1);
    const retained = (schedule: string) =>
      samplesOf(exposition, "vmsnap_schedule_snapshots_retained", { namespace: "a", schedule });
    expect(retained("db").map((s) => s.value)).to.deep.equal([35]);
    expect(retained("gone"), "a deleted schedule's series goes with it").to.deep.equal([]);
  });
});
