// The alerting rules are valid for Prometheus and behave as their promtool unit tests specify;
// the agent's own exposition passes Prometheus' metric lint.
import { expect } from "chai";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { parse } from "yaml";
import { createMetrics } from "../../../src/metrics/index.ts";
import { MetricsServer } from "../../../src/metrics/server.ts";
import { REPO_ROOT, run } from "./run.ts";

const RULES = "deploy/prometheus/vmsnap-rules.yaml";
const RULE_TESTS = "deploy/prometheus/vmsnap-rules.test.yaml";

interface RuleFile {
  groups: { name: string; rules: { alert?: string; record?: string }[] }[];
}
interface RuleTestFile {
  tests: { alert_rule_test?: { alertname: string; exp_alerts: unknown[] }[] }[];
}

function yamlOf<T>(path: string): T {
  return parse(readFileSync(join(REPO_ROOT, path), "utf8")) as T;
}

describe("Prometheus alerting rules", () => {
  it("pass `promtool check rules`, every rule of the file found", async () => {
    const rules = yamlOf<RuleFile>(RULES).groups.flatMap((g) => g.rules);
    const result = await run("promtool", ["check", "rules", RULES]);
    expect(result.code, result.stderr + result.stdout).to.equal(0);
    expect(result.stdout).to.contain(`SUCCESS: ${rules.length} rules found`);
  });

  it("pass their promtool unit tests", async () => {
    // promtool resolves the test file's rule_files against the test file's own folder.
    const result = await run("promtool", ["test", "rules", RULE_TESTS]);
    expect(result.code, result.stderr + result.stdout).to.equal(0);
    expect(result.stdout).to.contain("SUCCESS");
  });

  it("each alert is tested both firing and quiet", () => {
    const alerts = yamlOf<RuleFile>(RULES)
      .groups.flatMap((g) => g.rules)
      .flatMap((r) => (r.alert ? [r.alert] : []));
    const cases = yamlOf<RuleTestFile>(RULE_TESTS).tests.flatMap((t) => t.alert_rule_test ?? []);
    for (const alert of alerts) {
      const mine = cases.filter((c) => c.alertname === alert);
      expect(
        mine.some((c) => c.exp_alerts.length > 0),
        `${alert} firing`,
      ).to.equal(true);
      expect(
        mine.some((c) => c.exp_alerts.length === 0),
        `${alert} quiet`,
      ).to.equal(true);
    }
  });
});

describe("the agent's /metrics exposition", () => {
  let server: MetricsServer | undefined;
  afterEach(() => server?.close());

  async function scrape(defaultMetrics: boolean): Promise<string> {
    const metrics = createMetrics(undefined, { defaultMetrics });
    metrics.forController("vmsnapshot", 2).reconciled("success");
    metrics.forWorkqueue("vmsnapshot").queueDuration.observe(0.01);
    metrics.snapshotsTotal.inc({ result: "failed", reason: "FreezeTimeout" });
    metrics.phaseDurationSeconds.observe({ phase: "Frozen" }, 0.5);
    metrics.libvirtErrorsTotal.inc({ code: 42, reason: "DomainNotFound" });
    metrics.storageOperationSeconds.observe(
      { backend: "rbd", operation: "create", result: "success" },
      0.1,
    );
    metrics.frozenGuests.frozen("ns/a");
    metrics.scheduleGauges.set(
      { namespace: "ns", schedule: "hourly" },
      {
        retained: 3,
        lastSuccess: new Date(),
        created: new Date(),
        intervalSeconds: 3600,
        suspended: false,
      },
    );
    server = new MetricsServer({ registry: metrics.registry, ready: () => true });
    const { port } = await server.start("127.0.0.1", 0);
    const response = await fetch(`http://127.0.0.1:${port}/metrics`);
    expect(response.status).to.equal(200);
    return response.text();
  }

  it("passes `promtool check metrics` lint for every vmsnap, controller-runtime and workqueue family", async () => {
    const result = await run("promtool", ["check", "metrics"], { input: await scrape(false) });
    expect(result.code, result.stdout + result.stderr).to.equal(0);
  });

  it("parses as a whole, prom-client's process metrics included", async () => {
    // prom-client names a few Node.js gauges `nodejs_active_*_total`, which the linter flags
    // (exit 3); only a parse failure (exit 1) would stop Prometheus from scraping.
    const result = await run("promtool", ["check", "metrics"], { input: await scrape(true) });
    expect(result.code, result.stdout + result.stderr).to.be.oneOf([0, 3]);
    const flagged = (result.stdout + result.stderr).split("\n").filter((l) => l.trim() !== "");
    for (const line of flagged) expect(line, line).to.match(/^nodejs_active_\w+_total /);
  });
});
