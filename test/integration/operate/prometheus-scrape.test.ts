// A real Prometheus (the Debian package) scrapes a real running controller, and PromQL over its
// HTTP API sees what two snapshots did: frozen windows, downtime, results, reconciles, queue adds,
// storage calls. It also loads the alerting rules shipped in deploy/prometheus/, so they are
// evaluated against real series, not only promtool's synthetic ones. The controller, Ceph and the
// control plane are the shared test harnesses; Prometheus is started here and stopped by pid.
import { expect } from "chai";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { VMSnapshot } from "../../../src/api/types.ts";
import { freePort, startDaemon, waitFor, type Daemon } from "../../support/processes.ts";
import { startScenario, type Scenario } from "../../support/controller/snapshot-scenario.ts";
import { REPO_ROOT, run } from "./run.ts";

const PROMETHEUS = "/usr/bin/prometheus";
const JOB = "vmsnap-controller";
const RULES = join(REPO_ROOT, "deploy/prometheus/vmsnap-rules.yaml");

interface Sample {
  metric: Record<string, string>;
  value: number;
}

interface RuleState {
  name: string;
  health: string;
  lastError?: string;
  state?: string;
  lastEvaluation: string;
}

/** A Prometheus scraping one target every second, with storage in a folder of its own. */
class TestPrometheus {
  private constructor(
    private readonly daemon: Daemon,
    private readonly dir: string,
    readonly url: string,
  ) {}

  static async start(target: string): Promise<TestPrometheus> {
    const dir = mkdtempSync(join(tmpdir(), "vmsnap-prom-"));
    const port = await freePort();
    const config = join(dir, "prometheus.yml");
    // scrape_timeout must not exceed the interval; rules run as often as scrapes.
    writeFileSync(
      config,
      [
        "global:",
        "  scrape_interval: 1s",
        "  scrape_timeout: 1s",
        "  evaluation_interval: 1s",
        "rule_files:",
        `  - ${JSON.stringify(RULES)}`,
        "scrape_configs:",
        `  - job_name: ${JOB}`,
        "    static_configs:",
        `      - targets: [${JSON.stringify(target)}]`,
        "",
      ].join("\n"),
    );
    const daemon = await startDaemon(
      "prometheus",
      PROMETHEUS,
      [
        `--config.file=${config}`,
        `--storage.tsdb.path=${join(dir, "data")}`,
        `--web.listen-address=127.0.0.1:${port}`,
        "--log.level=warn",
      ],
      { runDir: dir },
    );
    const prometheus = new TestPrometheus(daemon, dir, `http://127.0.0.1:${port}`);
    try {
      await waitFor(
        "Prometheus /-/ready",
        async () => (await fetch(`${prometheus.url}/-/ready`)).ok,
        30_000,
        100,
      );
    } catch (err) {
      const log = await prometheus.log();
      await prometheus.stop();
      throw new Error(`${(err as Error).message}\n--- prometheus log ---\n${log}`, { cause: err });
    }
    return prometheus;
  }

  /** An instant PromQL query, evaluated now. */
  async query(expr: string): Promise<Sample[]> {
    const response = await fetch(`${this.url}/api/v1/query?query=${encodeURIComponent(expr)}`);
    const body = (await response.json()) as {
      status: string;
      error?: string;
      data: {
        resultType: string;
        result: Array<{ metric: Record<string, string>; value: [number, string] }>;
      };
    };
    if (body.status !== "success") throw new Error(`PromQL ${expr}: ${body.error}`);
    return body.data.result.map((r) => ({ metric: r.metric, value: Number(r.value[1]) }));
  }

  /** The value of a query that must return exactly one series. */
  async scalar(expr: string): Promise<number> {
    const samples = await this.query(expr);
    expect(samples, `${expr} returns one series`).to.have.length(1);
    return samples[0]!.value;
  }

  async rules(): Promise<RuleState[]> {
    const response = await fetch(`${this.url}/api/v1/rules`);
    const body = (await response.json()) as { data: { groups: Array<{ rules: RuleState[] }> } };
    return body.data.groups.flatMap((g) => g.rules);
  }

  /** Waits for a scrape that started after `epochMs`, so queries see everything before it. */
  async scrapedAfter(epochMs: number): Promise<void> {
    await waitFor(
      `a scrape of ${JOB} after ${new Date(epochMs).toISOString()}`,
      async () => {
        const [up] = await this.query(`timestamp(up{job="${JOB}"})`);
        return up !== undefined && up.value * 1000 > epochMs;
      },
      15_000,
      200,
    );
  }

  log(): Promise<string> {
    return run("tail", ["-n", "30", this.daemon.logFile]).then((r) => r.stdout);
  }

  async stop(): Promise<void> {
    await this.daemon.stop();
    rmSync(this.dir, { recursive: true, force: true });
  }
}

describe("a real Prometheus scraping the running controller", function () {
  this.timeout(180_000);
  let s: Scenario;
  let prometheus: TestPrometheus;
  const finished: VMSnapshot[] = [];

  before(async () => {
    s = await startScenario();
    prometheus = await TestPrometheus.start(`127.0.0.1:${s.controller.metricsPort}`);
    await prometheus.scrapedAfter(Date.now());
  });
  after(async () => {
    await prometheus?.stop();
    await s?.stop();
  });

  it("scrapes the controller as job vmsnap-controller, up and healthy, before any snapshot", async () => {
    expect(await prometheus.scalar(`up{job="${JOB}"}`)).to.equal(1);
    expect(await prometheus.scalar(`vmsnap_guest_frozen_seconds_count{job="${JOB}"}`)).to.equal(0);
    expect(
      await prometheus.scalar(`sum(controller_runtime_reconcile_total{controller="vmsnapshot"})`),
    ).to.equal(0);
    expect(await prometheus.query(`vmsnap_snapshots_total`)).to.deep.equal([]);
  });

  it("after a disk snapshot and a VM snapshot, PromQL sees exactly what their status says", async () => {
    const domain = await s.newDomain({ rbdDisks: 2 });
    await s.apply("prom-disk", {}, domain.name);
    finished.push(await s.waitFinal("prom-disk"));
    await s.apply("prom-vm", { memory: true }, domain.name);
    finished.push(await s.waitFinal("prom-vm"));
    for (const done of finished)
      expect(done.status?.phase, done.metadata.name).to.equal("Succeeded");
    await prometheus.scrapedAfter(
      Math.max(...finished.map((d) => Date.parse(d.status!.completionTime!))),
    );

    expect(await prometheus.scalar(`up{job="${JOB}"}`)).to.equal(1);

    // The frozen-window histogram holds the two windows status reports, to the millisecond.
    const frozenMs = finished.map((d) => d.status!.freezeDurationMs!);
    expect(await prometheus.scalar(`vmsnap_guest_frozen_seconds_count{job="${JOB}"}`)).to.equal(2);
    expect(await prometheus.scalar(`vmsnap_guest_frozen_seconds_sum{job="${JOB}"}`)).to.be.closeTo(
      (frozenMs[0]! + frozenMs[1]!) / 1000,
      1e-9,
    );
    expect(await prometheus.scalar(`vmsnap_vm_downtime_seconds_count{job="${JOB}"}`)).to.equal(1);
    expect(await prometheus.scalar(`vmsnap_vm_downtime_seconds_sum{job="${JOB}"}`)).to.be.closeTo(
      finished[1]!.status!.downtimeMs! / 1000,
      1e-9,
    );
    const p99 = await prometheus.scalar(
      `histogram_quantile(0.99, sum by (le) (vmsnap_guest_frozen_seconds_bucket{job="${JOB}"}))`,
    );
    // A number within the default freezeTimeout: NaN would mean no buckets to read.
    expect(p99, "the dashboard's frozen-window p99").to.be.within(0, 10);

    const results = await prometheus.query(`vmsnap_snapshots_total{job="${JOB}"}`);
    expect(results.map((r) => [r.metric.result, r.metric.reason, r.value])).to.deep.equal([
      ["succeeded", "Succeeded", 2],
    ]);
    expect(
      await prometheus.scalar(`vmsnap_phase_duration_seconds_count{phase="MemorySaved"}`),
    ).to.equal(1);
    expect(await prometheus.scalar(`vmsnap_phase_duration_seconds_count{phase="Frozen"}`)).to.equal(
      2,
    );
    expect(
      await prometheus.scalar(
        `vmsnap_storage_operation_seconds_count{backend="rbd",operation="create",result="success"}`,
      ),
    ).to.be.at.least(2);

    // controller-runtime's and client-go's names, as existing controller dashboards query them.
    expect(
      await prometheus.scalar(
        `sum(controller_runtime_reconcile_total{job="${JOB}",controller="vmsnapshot",result=~"success|requeue_after|requeue"})`,
      ),
    ).to.be.greaterThan(0);
    expect(
      await prometheus.scalar(`controller_runtime_reconcile_errors_total{controller="vmsnapshot"}`),
    ).to.equal(0);
    expect(
      await prometheus.scalar(`workqueue_adds_total{job="${JOB}",name="vmsnapshot"}`),
    ).to.be.at.least(2);
    expect(await prometheus.scalar(`workqueue_depth{name="vmsnapshot"}`)).to.equal(0);
    expect(await prometheus.scalar(`vmsnap_guests_frozen{job="${JOB}"}`)).to.equal(0);
  });

  it("evaluates the shipped alerting rules against the real series without error, none firing", async () => {
    const since = Date.now();
    await waitFor(
      "a rule evaluation after the snapshots",
      async () => (await prometheus.rules()).every((r) => Date.parse(r.lastEvaluation) > since),
      15_000,
      200,
    );
    const rules = await prometheus.rules();
    expect(rules.map((r) => r.name)).to.include.members([
      "VMSnapshotGuestFrozenTooLong",
      "VMSnapshotControllerDown",
    ]);
    for (const rule of rules) {
      expect(rule.health, `${rule.name}: ${rule.lastError ?? ""}`).to.equal("ok");
      if (rule.state !== undefined) expect(rule.state, rule.name).to.equal("inactive");
    }
  });

  it("a live scrape of the controller passes `promtool check metrics` (only prom-client's nodejs_active_*_total names flagged)", async () => {
    const response = await fetch(`http://127.0.0.1:${s.controller.metricsPort}/metrics`);
    expect(response.status).to.equal(200);
    const exposition = await response.text();
    expect(exposition).to.match(/^vmsnap_guest_frozen_seconds_count 2$/m);
    const result = await run("promtool", ["check", "metrics"], { input: exposition });
    // Exit 3 is lint findings; 1 would be an exposition Prometheus cannot parse.
    expect(result.code, result.stdout + result.stderr).to.be.oneOf([0, 3]);
    const flagged = (result.stdout + result.stderr).split("\n").filter((l) => l.trim() !== "");
    for (const line of flagged) expect(line, line).to.match(/^nodejs_active_\w+_total /);
  });

  it("when the controller stops, up drops to 0 and VMSnapshotControllerDown goes pending", async () => {
    await s.controller.stop();
    const stoppedAt = Date.now();
    await prometheus.scrapedAfter(stoppedAt);
    expect(await prometheus.scalar(`up{job="${JOB}"}`)).to.equal(0);
    await waitFor(
      "VMSnapshotControllerDown pending",
      async () => {
        const down = (await prometheus.rules()).find((r) => r.name === "VMSnapshotControllerDown");
        return down?.state === "pending";
      },
      15_000,
      200,
    ).catch(async (err) => {
      throw new Error(
        `${(err as Error).message}\n--- prometheus log ---\n${await prometheus.log()}`,
      );
    });
  });
});
