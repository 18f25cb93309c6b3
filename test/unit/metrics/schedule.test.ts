// The schedule metrics the dashboard row and alerts read.
import { expect } from "chai";
import { createMetrics, SCHEDULE_GAUGE_NAMES } from "../../../src/metrics/index.ts";
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

  it("buckets lateness from 10 ms to 10 min", async () => {
    const metrics = createMetrics(undefined, { defaultMetrics: false });
    metrics.scheduleRunLatenessSeconds.observe(0.02);
    const exposition = parseExposition(await metrics.registry.metrics());
    const bounds = bucketBounds(exposition, "vmsnap_schedule_run_lateness_seconds");
    expect([bounds[0], bounds.at(-1)]).to.deep.equal([0.01, 600]);
    expect(
      valueOf(exposition, "vmsnap_schedule_run_lateness_seconds_bucket", { le: "0.025" }),
    ).to.equal(1);
  });

  describe("per schedule", () => {
    const GAUGES = Object.values(SCHEDULE_GAUGE_NAMES);
    const values = {
      retained: 35,
      lastSuccess: new Date("2026-05-01T10:00:02.500Z"),
      created: new Date("2026-04-01T08:00:00Z"),
      intervalSeconds: 3600,
      suspended: false,
    };
    const read = async (metrics: ReturnType<typeof createMetrics>, schedule: string) => {
      const exposition = parseExposition(await metrics.registry.metrics());
      return Object.fromEntries(
        GAUGES.map((name) => [
          name,
          samplesOf(exposition, name, { namespace: "a", schedule }).map((s) => s.value),
        ]),
      );
    };

    it("shows retained snapshots, last success and creation in Unix seconds, the period and suspend", async () => {
      const metrics = createMetrics(undefined, { defaultMetrics: false });
      metrics.scheduleGauges.set({ namespace: "a", schedule: "db" }, values);
      metrics.scheduleGauges.set(
        { namespace: "a", schedule: "paused" },
        { ...values, suspended: true },
      );
      expect(await read(metrics, "db")).to.deep.equal({
        vmsnap_schedule_snapshots_retained: [35],
        vmsnap_schedule_last_success_timestamp_seconds: [1777629602.5],
        vmsnap_schedule_created_timestamp_seconds: [1775030400],
        vmsnap_schedule_interval_seconds: [3600],
        vmsnap_schedule_suspended: [0],
      });
      expect((await read(metrics, "paused")).vmsnap_schedule_suspended).to.deep.equal([1]);
    });

    it("has no last-success series until a success, and no period for an invalid spec", async () => {
      const metrics = createMetrics(undefined, { defaultMetrics: false });
      const labels = { namespace: "a", schedule: "db" };
      metrics.scheduleGauges.set(labels, values);
      metrics.scheduleGauges.set(labels, {
        ...values,
        lastSuccess: undefined,
        intervalSeconds: undefined,
      });
      const now = await read(metrics, "db");
      expect(now.vmsnap_schedule_last_success_timestamp_seconds).to.deep.equal([]);
      expect(now.vmsnap_schedule_interval_seconds).to.deep.equal([]);
      expect(now.vmsnap_schedule_created_timestamp_seconds).to.deep.equal([1775030400]);
    });

    it("removes every series of a deleted schedule, and only its own", async () => {
      const metrics = createMetrics(undefined, { defaultMetrics: false });
      metrics.scheduleGauges.set({ namespace: "a", schedule: "db" }, values);
      metrics.scheduleGauges.set({ namespace: "a", schedule: "gone" }, values);
      metrics.scheduleGauges.remove({ namespace: "a", schedule: "gone" });
      for (const series of Object.values(await read(metrics, "gone")))
        expect(series).to.deep.equal([]);
      for (const series of Object.values(await read(metrics, "db")))
        expect(series).to.have.length(1);
    });
  });
});
