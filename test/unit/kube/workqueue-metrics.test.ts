// The work queue plugged into the real `workqueue_*` metrics: what a Prometheus scrape shows
// after a few adds, retries and a slow worker.
import { expect } from "chai";
import { WorkQueue } from "../../../src/kube/workqueue.ts";
import { reportUnfinishedWork, workqueueMetricsHooks } from "../../../src/kube/workqueue.ts";
import { createMetrics } from "../../../src/metrics/index.ts";
import { parseExposition, valueOf } from "../../support/exposition.ts";
import { FakeClock } from "./fake-clock.ts";

describe("WorkQueue metrics through src/metrics", () => {
  it("exports adds, depth, retries, durations and the stuck-work gauges of the queue", async () => {
    const metrics = createMetrics(undefined, { defaultMetrics: false });
    const bound = metrics.forWorkqueue("vmsnapshot");
    const clock = new FakeClock();
    const queue = new WorkQueue({ clock, metrics: workqueueMetricsHooks(bound) });
    queue.add("ns/a");
    queue.add("ns/a");
    queue.add("ns/b");
    queue.addRateLimited("ns/c");
    clock.advance(2_000);
    const a = (await queue.get())!;
    clock.advance(3_000);
    const stopReporting = reportUnfinishedWork(queue, bound);
    stopReporting();
    queue.done(a);

    const labels = { name: "vmsnapshot", controller: "vmsnapshot" };
    const scrape = parseExposition(await metrics.registry.metrics());
    expect(valueOf(scrape, "workqueue_adds_total", labels)).to.equal(3);
    expect(valueOf(scrape, "workqueue_retries_total", labels)).to.equal(1);
    expect(valueOf(scrape, "workqueue_depth", labels), "b and c wait").to.equal(2);
    expect(valueOf(scrape, "workqueue_unfinished_work_seconds", labels)).to.equal(3);
    expect(valueOf(scrape, "workqueue_longest_running_processor_seconds", labels)).to.equal(3);
    expect(valueOf(scrape, "workqueue_queue_duration_seconds_sum", labels)).to.equal(2);
    expect(valueOf(scrape, "workqueue_work_duration_seconds_sum", labels)).to.equal(3);
  });
});
