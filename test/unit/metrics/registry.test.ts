// One registry per process, owned by the caller: prom-client's global default registry stays
// untouched, so creating the metrics twice (two tests, or two controllers) never collides.
import { expect } from "chai";
import { register as globalRegistry, Registry } from "prom-client";
import { createMetrics } from "../../../src/metrics/index.ts";
import { parseExposition } from "../../support/exposition.ts";

describe("metrics registry", () => {
  it("registers nothing in prom-client's global default registry", async () => {
    const before = globalRegistry.getMetricsAsArray().length;
    createMetrics();
    expect(globalRegistry.getMetricsAsArray().length).to.equal(before);
    expect(await globalRegistry.metrics()).not.to.contain("vmsnap_");
  });

  it("can be created twice in one process, each registry keeping its own values", async () => {
    const a = createMetrics(new Registry(), { defaultMetrics: false });
    const b = createMetrics(new Registry(), { defaultMetrics: false });
    a.thawFailuresTotal.inc();
    expect(await a.registry.getSingleMetricAsString("vmsnap_thaw_failures_total")).to.match(
      /^vmsnap_thaw_failures_total 1$/m,
    );
    expect(await b.registry.getSingleMetricAsString("vmsnap_thaw_failures_total")).to.match(
      /^vmsnap_thaw_failures_total 0$/m,
    );
  });

  it("adds the process and Node.js runtime metrics by default", async () => {
    const types = parseExposition(await createMetrics().registry.metrics()).types;
    expect(types.get("process_cpu_seconds_total")).to.equal("counter");
    expect(types.get("process_start_time_seconds")).to.equal("gauge");
    expect(types.get("nodejs_eventloop_lag_seconds")).to.equal("gauge");
  });

  it("leaves them out when asked, for tests that count families", async () => {
    const types = parseExposition(
      await createMetrics(undefined, { defaultMetrics: false }).registry.metrics(),
    ).types;
    expect(types.has("process_cpu_seconds_total")).to.equal(false);
    expect(types.has("vmsnap_guests_frozen")).to.equal(true);
  });
});
