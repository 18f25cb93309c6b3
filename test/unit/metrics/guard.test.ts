// The thaw guard's state, exported by the controller from the guard's reports: gauges follow
// the latest report, the retry counter only grows (a new guard's count starts at zero), and
// unconfirmed thaws are counted by outcome.
import { expect } from "chai";
import { createMetrics } from "../../../src/metrics/index.ts";
import { retriesAdded } from "../../../src/metrics/guard.ts";
import { parseExposition, valueOf } from "../../support/exposition.ts";

async function scrape(metrics: ReturnType<typeof createMetrics>) {
  const e = parseExposition(await metrics.registry.metrics());
  return {
    armed: valueOf(e, "vmsnap_guard_armed_entries"),
    thawing: valueOf(e, "vmsnap_guard_thaws_in_progress"),
    overdue: valueOf(e, "vmsnap_guard_overdue_thaws"),
    retries: valueOf(e, "vmsnap_guard_thaw_retries_total"),
    lost: valueOf(e, "vmsnap_thaws_unconfirmed_total", { outcome: "lost" }),
    failed: valueOf(e, "vmsnap_thaws_unconfirmed_total", { outcome: "failed" }),
  };
}

describe("guard metrics", () => {
  it("start at zero, every series present", async () => {
    const metrics = createMetrics(undefined, { defaultMetrics: false });
    expect(await scrape(metrics)).to.deep.equal({
      armed: 0,
      thawing: 0,
      overdue: 0,
      retries: 0,
      lost: 0,
      failed: 0,
    });
  });

  it("follow the guard's reports; the retry counter never goes down across guards", async () => {
    const metrics = createMetrics(undefined, { defaultMetrics: false });
    metrics.guard.guardState({ armed: 2, thawing: 1, overdue: 1, retries: 5 }, 100);
    expect(await scrape(metrics)).to.include({ armed: 2, thawing: 1, overdue: 1, retries: 5 });
    metrics.guard.guardState({ armed: 1, thawing: 0, overdue: 0, retries: 9 }, 100);
    expect(await scrape(metrics)).to.include({ armed: 1, overdue: 0, retries: 9 });
    // A new guard process: its own count from zero, all of it new.
    metrics.guard.guardState({ armed: 1, thawing: 1, overdue: 1, retries: 3 }, 200);
    expect(await scrape(metrics)).to.include({ overdue: 1, retries: 12 });
    metrics.guard.thawUnconfirmed("lost");
    expect(await scrape(metrics)).to.include({ lost: 1, failed: 0 });
  });

  it("count retries by difference, and all of a new guard's count", () => {
    expect(retriesAdded(undefined, 1, 4)).to.equal(4);
    expect(retriesAdded({ pid: 1, retries: 4 }, 1, 6)).to.equal(2);
    expect(retriesAdded({ pid: 1, retries: 4 }, 2, 3)).to.equal(3);
    // Same pid reported by a reconnected sidecar that restarted (pid reuse): count went down.
    expect(retriesAdded({ pid: 1, retries: 4 }, 1, 1)).to.equal(1);
  });
});
