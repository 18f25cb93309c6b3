// `vmsnap_guests_frozen` and `vmsnap_longest_frozen_guest_seconds` come from one record of which
// guests are frozen since when, read at scrape time.
import { expect } from "chai";
import { createMetrics } from "../../../src/metrics/index.ts";
import { parseExposition, valueOf } from "../../support/exposition.ts";

function withClock(startMs: number) {
  const clock = { ms: startMs };
  const metrics = createMetrics(undefined, { defaultMetrics: false, now: () => clock.ms });
  const scrape = async () => {
    const exposition = parseExposition(await metrics.registry.metrics());
    return {
      frozen: valueOf(exposition, "vmsnap_guests_frozen"),
      longest: valueOf(exposition, "vmsnap_longest_frozen_guest_seconds"),
    };
  };
  return { clock, metrics, scrape };
}

describe("frozen guests", () => {
  it("reports none frozen, for zero seconds, before any freeze", async () => {
    const { scrape } = withClock(1_000_000);
    expect(await scrape()).to.deep.equal({ frozen: 0, longest: 0 });
  });

  it("counts frozen guests and ages the one frozen longest at each scrape", async () => {
    const { clock, metrics, scrape } = withClock(1_000_000);
    metrics.frozenGuests.frozen("ns/a");
    clock.ms += 2_000;
    metrics.frozenGuests.frozen("ns/b");
    clock.ms += 500;
    expect(await scrape()).to.deep.equal({ frozen: 2, longest: 2.5 });
    metrics.frozenGuests.thawed("ns/a");
    expect(await scrape()).to.deep.equal({ frozen: 1, longest: 0.5 });
    metrics.frozenGuests.thawed("ns/b");
    expect(await scrape()).to.deep.equal({ frozen: 0, longest: 0 });
  });

  it("keeps the first start when a freeze is retried, since the guest stayed frozen", async () => {
    const { clock, metrics, scrape } = withClock(1_000_000);
    metrics.frozenGuests.frozen("ns/a");
    clock.ms += 3_000;
    metrics.frozenGuests.frozen("ns/a");
    expect(await scrape()).to.deep.equal({ frozen: 1, longest: 3 });
  });

  it("ages a freeze begun by an earlier controller instance from its persisted start", async () => {
    const { metrics, scrape } = withClock(1_000_000);
    metrics.frozenGuests.frozen("ns/a", 1_000_000 - 400_000);
    expect(await scrape()).to.deep.equal({ frozen: 1, longest: 400 });
  });

  it("ignores a thaw of a guest it never saw frozen, as thaw is idempotent", async () => {
    const { metrics, scrape } = withClock(1_000_000);
    metrics.frozenGuests.frozen("ns/a");
    metrics.frozenGuests.thawed("ns/unknown");
    metrics.frozenGuests.thawed("ns/a");
    metrics.frozenGuests.thawed("ns/a");
    expect(metrics.frozenGuests.count()).to.equal(0);
    expect(await scrape()).to.deep.equal({ frozen: 0, longest: 0 });
  });
});
