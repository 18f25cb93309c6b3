// The guard is a process and may die or hang too. The client then starts a new one and arms
// every live entry in it again, so a guest frozen before the guard died is still thawed at its
// deadline — by the new guard, not early, not never.
import { expect } from "chai";

import {
  GuardUnavailableError,
  ThawGuard,
  type ThawedReply,
} from "../../../src/guard/thaw-guard.ts";
import {
  useLibvirtTestHost,
  type LibvirtTestHost,
} from "../../support/libvirt/test-driver-host.ts";
import { GuardLog, hasExited } from "./guard-log.ts";
import { Guests, until, when } from "./frozen-domain.ts";

const LATE_MS = 200;
/** Above a restart's length in development (tsx compiles the guard: ~350 ms). */
const ACK_TIMEOUT_MS = 1_000;

describe("thaw guard: the guard dies", function () {
  let host: LibvirtTestHost;
  let guests: Guests;
  let log: GuardLog;
  let guard: ThawGuard;
  let reports: ThawedReply[];
  let exits: Array<[number | undefined, string]>;

  before(async () => {
    host = await useLibvirtTestHost();
  });
  beforeEach(async () => {
    guests = new Guests(host);
    log = new GuardLog();
    reports = [];
    exits = [];
    guard = await ThawGuard.start({
      uri: host.uri,
      stderr: log.fd,
      ackTimeoutMs: ACK_TIMEOUT_MS,
      onThawed: (r) => reports.push(r),
      onGuardExit: (pid, how) => exits.push([pid, how]),
    });
  });
  afterEach(async function () {
    await guard.close();
    await guests.cleanup();
    if (this.currentTest?.state === "failed") console.error(log.text());
    log.dispose();
  });

  /** Kills the current guard (our grandchild, by pid) and waits for its replacement. */
  async function killGuard(): Promise<number> {
    const old = guard.pid!;
    process.kill(old, "SIGKILL");
    await when("a new guard", () => guard.pid !== undefined && guard.pid !== old, 5_000);
    return old;
  }

  it("restarts a killed guard and re-arms its entries: the thaw comes at the deadline", async () => {
    const name = await guests.frozen("restart");
    const deadline = Date.now() + 2_000;
    await guard.arm({ id: "snap-r", domain: name, deadline });
    const old = await killGuard();
    expect(exits).to.deep.equal([[old, "signal SIGKILL"]]);

    await until(deadline - 150);
    expect(await host.isFrozen(name), "nobody thawed it early").to.equal(true);
    const thawedAt = await when("the thaw", async () => !(await host.isFrozen(name)), 3_000);
    expect(thawedAt - deadline).to.be.within(0, LATE_MS);
    await when("the guard's report", () => reports.length > 0, 1_000);
    expect(reports.map((r) => [r.id, r.cause, r.thawed])).to.deep.equal([
      ["snap-r", "deadline", 2],
    ]);
    expect(log.find("fired", { id: "snap-r" })).to.have.length(1);
  });

  it("answers an arm made while the guard is down once the new one has it", async () => {
    const name = await guests.frozen("while-down");
    const old = guard.pid!;
    process.kill(old, "SIGKILL");
    await when("the client to notice", () => exits.length > 0, 5_000);
    const deadline = Date.now() + 1_500;
    await guard.arm({ id: "snap-d", domain: name, deadline });
    expect(guard.pid).to.not.equal(old);
    const thawedAt = await when("the thaw", async () => !(await host.isFrozen(name)), 3_000);
    expect(thawedAt - deadline).to.be.within(0, LATE_MS);
  });

  it("fires at once, in the new guard, an entry whose deadline passed while none ran", async () => {
    const name = await guests.frozen("missed");
    await guard.arm({ id: "snap-m", domain: name, deadline: Date.now() + 100 });
    process.kill(guard.pid!, "SIGSTOP"); // the deadline passes in a guard that cannot act
    await until(Date.now() + 300);
    expect(await host.isFrozen(name)).to.equal(true);
    const stopped = guard.pid!;
    // An unanswered call exposes the hang; the client replaces the guard.
    const err = await guard
      .arm({ id: "probe", domain: name, deadline: Date.now() + 60_000 })
      .catch((e: unknown) => e);
    expect(err).to.be.instanceOf(GuardUnavailableError);
    await when("the hung guard to be killed", () => hasExited(stopped), 3_000);
    await when("the thaw", async () => !(await host.isFrozen(name)), 3_000);
    await when("the guard's report", () => reports.length > 0, 1_000);
    expect(reports.map((r) => r.id)).to.deep.equal(["snap-m"]);
  });

  it("fails an arm the guard does not acknowledge in time, and does not re-arm it", async () => {
    const name = await guests.running("unacked");
    const hung = guard.pid!;
    process.kill(hung, "SIGSTOP");
    const started = Date.now();
    const err = await guard
      .arm({ id: "snap-u", domain: name, deadline: Date.now() + 500 })
      .catch((e: unknown) => e);
    expect(err).to.be.instanceOf(GuardUnavailableError);
    expect(Date.now() - started).to.be.within(ACK_TIMEOUT_MS - 10, ACK_TIMEOUT_MS + 300);
    await when("a new guard", () => guard.pid !== undefined && guard.pid !== hung, 5_000);
    await until(started + 2 * ACK_TIMEOUT_MS);
    expect(reports, "the failed arm is not the new guard's business").to.deep.equal([]);
  });
});

describe("thaw guard: closing without a live guard", function () {
  let host: LibvirtTestHost;
  let guests: Guests;
  let log: GuardLog;

  before(async () => {
    host = await useLibvirtTestHost();
  });
  beforeEach(() => {
    guests = new Guests(host);
    log = new GuardLog();
  });
  afterEach(async function () {
    await guests.cleanup();
    if (this.currentTest?.state === "failed") console.error(log.text());
    log.dispose();
  });

  for (const [when_, restartMinMs] of [
    ["before a restart is due", 60_000],
    ["while the replacement is still starting", 0],
  ] as const) {
    it(`still thaws what is armed when closed after the guard died, ${when_}`, async () => {
      const name = await guests.frozen("close-down");
      const reports: ThawedReply[] = [];
      let died = false;
      const guard = await ThawGuard.start({
        uri: host.uri,
        stderr: log.fd,
        restartMinMs,
        onThawed: (r) => reports.push(r),
        onGuardExit: () => (died = true),
      });
      await guard.arm({ id: "snap-c", domain: name, deadline: Date.now() + 60_000 });
      const old = guard.pid!;
      process.kill(old, "SIGKILL");
      await when("the client to notice", () => died, 5_000);
      if (restartMinMs === 0) await when("a replacement", () => guard.pid !== undefined, 1_000);
      await guard.close();
      expect(reports.map((r) => [r.id, r.cause, r.thawed])).to.deep.equal([
        ["snap-c", "orphaned", 2],
      ]);
      expect(await host.wasFrozen(name)).to.equal(false);
    });
  }
});

describe("thaw guard: start", () => {
  it("fails when the guard cannot reach libvirt", async () => {
    const log = new GuardLog();
    try {
      const err = await ThawGuard.start({
        uri: "test+unix:///default?socket=/nonexistent/libvirt-sock",
        stderr: log.fd,
      }).catch((e: unknown) => e);
      expect(err).to.be.instanceOf(Error);
      expect((err as Error).message).to.match(/exited before it was ready: exit code 1/);
      expect(log.find("cannot connect to libvirt")).to.have.length(1);
    } finally {
      log.dispose();
    }
  });
});
