// workqueue_* metrics as client-go/controller-runtime export them: `{name, controller}` labels
// and 10 ns … 1000 s buckets.
import { expect } from "chai";
import { createMetrics } from "../../../src/metrics/index.ts";
import { bucketBounds, parseExposition, valueOf } from "../../support/exposition.ts";

describe("work queue metrics", () => {
  it("exports each family under client-go's name and type, labelled by queue name and controller", async () => {
    const metrics = createMetrics(undefined, { defaultMetrics: false });
    metrics.forWorkqueue("vmsnapshot");
    const exposition = parseExposition(await metrics.registry.metrics());
    const labels = { name: "vmsnapshot", controller: "vmsnapshot" };
    for (const [name, type] of [
      ["workqueue_depth", "gauge"],
      ["workqueue_adds_total", "counter"],
      ["workqueue_retries_total", "counter"],
      ["workqueue_unfinished_work_seconds", "gauge"],
      ["workqueue_longest_running_processor_seconds", "gauge"],
    ] as const) {
      expect(exposition.types.get(name), name).to.equal(type);
      expect(valueOf(exposition, name, labels), name).to.equal(0);
    }
    expect(exposition.types.get("workqueue_queue_duration_seconds")).to.equal("histogram");
    expect(exposition.types.get("workqueue_work_duration_seconds")).to.equal("histogram");
  });

  it("tracks depth, adds, retries and the stuck-work gauges of one queue", async () => {
    const metrics = createMetrics(undefined, { defaultMetrics: false });
    const queue = metrics.forWorkqueue("vmsnapshot");
    queue.adds.inc();
    queue.adds.inc();
    queue.depth.inc();
    queue.depth.inc();
    queue.depth.dec();
    queue.retries.inc();
    queue.unfinishedWorkSeconds.set(4.5);
    queue.longestRunningProcessorSeconds.set(3);
    const exposition = parseExposition(await metrics.registry.metrics());
    const labels = { name: "vmsnapshot", controller: "vmsnapshot" };
    expect(valueOf(exposition, "workqueue_adds_total", labels)).to.equal(2);
    expect(valueOf(exposition, "workqueue_depth", labels)).to.equal(1);
    expect(valueOf(exposition, "workqueue_retries_total", labels)).to.equal(1);
    expect(valueOf(exposition, "workqueue_unfinished_work_seconds", labels)).to.equal(4.5);
    expect(valueOf(exposition, "workqueue_longest_running_processor_seconds", labels)).to.equal(3);
  });

  it("buckets queue and work durations as client-go: powers of ten from 10 ns to 1000 s", async () => {
    const metrics = createMetrics(undefined, { defaultMetrics: false });
    const queue = metrics.forWorkqueue("vmsnapshot");
    queue.queueDuration.observe(0.002);
    queue.workDuration.observe(12);
    const exposition = parseExposition(await metrics.registry.metrics());
    const labels = { name: "vmsnapshot", controller: "vmsnapshot" };
    const expected = [1e-8, 1e-7, 1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 1e-1, 1, 10, 100, 1000];
    for (const name of ["workqueue_queue_duration_seconds", "workqueue_work_duration_seconds"]) {
      expect(bucketBounds(exposition, name, labels), name).to.deep.equal(expected);
    }
    const bucket = (name: string, le: string) =>
      valueOf(exposition, `${name}_bucket`, { ...labels, le });
    expect(bucket("workqueue_queue_duration_seconds", "0.001")).to.equal(0);
    expect(bucket("workqueue_queue_duration_seconds", "0.01")).to.equal(1);
    expect(bucket("workqueue_work_duration_seconds", "10")).to.equal(0);
    expect(bucket("workqueue_work_duration_seconds", "100")).to.equal(1);
  });
});
