// The guard never gives up while it lives: a guest whose deadline passes while libvirtd is
// stopped for longer than the guard's old budget (8 tries: ~15 s with the 1 s call deadline
// used here, ~45 s with the default 5 s) is thawed once libvirtd runs again, and meanwhile the
// guard reports the thaw as overdue, which the controller exports as metrics. A domain that is
// not found after the freeze is reported lost, never thawed; a stopped one is done with.
// Real libvirtd (test driver) throughout; the outage is a SIGSTOP of the daemon (see
// LibvirtTestHost.stopLibvirtd for why not a restart).
import { expect } from "chai";

import { ThawGuard, type StateReply, type ThawedReply } from "../../../src/guard/thaw-guard.ts";
import { GUARD_THAW_POLICY } from "../../../src/hypervisor/thaw.ts";
import { createMetrics } from "../../../src/metrics/index.ts";
import { MetricsObserver } from "../../../src/snapshot/observe.ts";
import { withPrivateFile } from "../../support/libvirt/domains.ts";
import {
  testDomainXml,
  uniqueTestDomainName,
  useLibvirtTestHost,
  type LibvirtTestHost,
} from "../../support/libvirt/test-driver-host.ts";
import { virsh } from "../../support/libvirt/virsh.ts";
import { parseExposition, valueOf } from "../../support/exposition.ts";
import { GuardLog } from "./guard-log.ts";
import { Guests, until, when } from "./frozen-domain.ts";

/** Longer than the old budget at this call deadline (8 tries, ~15 s), short enough for CI. */
const OUTAGE_MS = 20_000;
const CALL_TIMEOUT_MS = 1_000;

describe("thaw guard: libvirtd outages and lost domains", function () {
  this.timeout(120_000);
  let host: LibvirtTestHost;
  let guests: Guests;
  let log: GuardLog;
  let guard: ThawGuard;
  let reports: ThawedReply[];
  let states: StateReply[];
  let exits: string[];
  let metrics: ReturnType<typeof createMetrics>;
  let observer: MetricsObserver;

  before(async () => {
    host = await useLibvirtTestHost();
  });
  beforeEach(async () => {
    guests = new Guests(host);
    log = new GuardLog();
    reports = [];
    states = [];
    exits = [];
    metrics = createMetrics(undefined, { defaultMetrics: false });
    observer = new MetricsObserver(metrics);
    guard = await ThawGuard.start({
      uri: host.uri,
      stderr: log.fd,
      policy: { callTimeoutMs: CALL_TIMEOUT_MS },
      onThawed: (r) => {
        reports.push(r);
        observer.guardFired(r);
      },
      onGuardExit: (pid, how) => exits.push(`${pid}: ${how}`),
      onState: (s, pid) => {
        states.push(s);
        metrics.guard.guardState(s, pid);
      },
    });
  });
  afterEach(async function () {
    host.continueLibvirtd();
    await guard.close();
    await guests.cleanup();
    if (this.currentTest?.state === "failed") console.error(log.text());
    log.dispose();
  });

  const scrape = async () => {
    const e = parseExposition(await metrics.registry.metrics());
    return {
      overdue: valueOf(e, "vmsnap_guard_overdue_thaws"),
      armed: valueOf(e, "vmsnap_guard_armed_entries"),
      retries: valueOf(e, "vmsnap_guard_thaw_retries_total"),
      lost: valueOf(e, "vmsnap_thaws_unconfirmed_total", { outcome: "lost" }),
    };
  };

  it(`thaws a guest whose deadline passed while libvirtd was stopped ${OUTAGE_MS / 1000} s, once it is back, reporting it overdue meanwhile`, async () => {
    const name = await guests.frozen("outage");
    const deadline = Date.now() + 500;
    await guard.arm({ id: "snap-outage", domain: name, deadline });
    // The state follows the ack: it may land just after arm() resolved.
    await when("the armed gauge", async () => (await scrape()).armed === 1, 2_000);
    expect(await scrape()).to.include({ overdue: 0 });
    host.stopLibvirtd();
    const stoppedAt = Date.now();
    let duringOutage: Awaited<ReturnType<typeof scrape>>;
    try {
      await until(deadline + 2_000);
      expect(await scrape(), "overdue once its deadline passed").to.include({
        armed: 0,
        overdue: 1,
      });
      await until(stoppedAt + OUTAGE_MS);
      duringOutage = await scrape();
      expect(reports, "no report while libvirtd is stopped").to.deep.equal([]);
    } finally {
      host.continueLibvirtd();
    }
    const backAt = Date.now();
    await when("the guard's report", () => reports.length > 0, 30_000);
    const thawAfterBackMs = reports[0]!.at - backAt;
    console.log(
      `      libvirtd stopped ${backAt - stoppedAt} ms; the guard retried ${duringOutage.retries} times meanwhile, and thawed ${thawAfterBackMs} ms after it was back`,
    );
    expect(exits, "the guard lived through the outage").to.deep.equal([]);
    expect(reports[0]).to.include({ outcome: "thawed", thawed: 2, cause: "deadline" });
    expect(reports[0]!.attempts).to.be.above(1);
    expect(duringOutage.overdue).to.equal(1);
    expect(duringOutage.retries).to.be.at.least(5);
    // Back within one capped retry delay plus one call deadline, and then some for the
    // daemon to work through the connections queued while it was stopped.
    expect(thawAfterBackMs).to.be.below(
      GUARD_THAW_POLICY.maxRetryDelayMs + CALL_TIMEOUT_MS + 2_000,
    );
    expect(await host.isFrozen(name)).to.equal(false);
    await when("the overdue gauge to clear", async () => (await scrape()).overdue === 0, 6_000);
    expect(states.at(-1)).to.include({ armed: 0, thawing: 0, overdue: 0 });
  });

  it("refuses to arm a domain whose thaw is not confirmed while libvirtd is stopped, and arms it once thawed", async () => {
    const name = await guests.frozen("rearm");
    await guard.arm({ id: "first", domain: name, deadline: Date.now() + 100 });
    host.stopLibvirtd();
    try {
      await when("the thaw to be under way", () => states.some((s) => s.thawing === 1), 5_000);
      let refusal: unknown;
      await guard
        .arm({ id: "second", domain: name, deadline: Date.now() + 60_000 })
        .catch((err: unknown) => (refusal = err));
      expect(String(refusal)).to.match(/still thawing/);
    } finally {
      host.continueLibvirtd();
    }
    await when("the guard's report", () => reports.length > 0, 15_000);
    await guard.arm({ id: "second", domain: name, deadline: Date.now() + 60_000 });
    await guard.disarm("second");
  });

  it("reports a guest undefined while frozen as lost, and the controller counts it unconfirmed", async () => {
    const name = await guests.frozen("lost");
    await guard.arm({ id: "snap-lost", domain: name, deadline: Date.now() + 300 });
    // A transient domain destroyed is gone from this host, as one migrated away would be.
    await host.destroyDomain(name);
    await when("the guard's report", () => reports.length > 0, 5_000);
    expect(reports[0]).to.include({ outcome: "lost", thawed: 0, error: "DomainNotFound" });
    expect(await scrape()).to.include({ lost: 1, overdue: 0 });
  });

  it("reports a persistent guest shut off while frozen as stopped: nothing is left frozen", async () => {
    const name = uniqueTestDomainName("stopped");
    const uri = host.uri;
    await withPrivateFile(testDomainXml({ name, rbdDisks: 2, guestAgent: true }), (path) =>
      virsh(["define", path], { uri, timeoutMs: 10_000 }),
    );
    try {
      await virsh(["start", name], { uri, timeoutMs: 10_000 });
      expect(await host.hypervisor().fsFreeze(name)).to.equal(2);
      await guard.arm({ id: "snap-stopped", domain: name, deadline: Date.now() + 300 });
      await virsh(["destroy", name], { uri, timeoutMs: 10_000 });
      await when("the guard's report", () => reports.length > 0, 5_000);
      expect(reports[0]).to.include({ outcome: "stopped", thawed: 0 });
      expect(await scrape()).to.include({ lost: 0 });
    } finally {
      await virsh(["destroy", name], { uri, timeoutMs: 10_000 }).catch(() => {});
      await virsh(["undefine", name], { uri, timeoutMs: 10_000 });
    }
  });
});
