// The guard as a sidecar (`guard-main --listen`): a long-lived process of its own, which a
// controller reaches over a unix socket. This is how the thaw guarantee survives the death of a
// controller that is PID 1 of its container. The guard and the stand-in controllers
// (fixtures/sidecar-client.ts) are separate processes here, so each can be killed on its own.
import { expect } from "chai";
import { statSync, writeFileSync } from "node:fs";

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
import { ClientProcess } from "./sidecar-client.ts";
import { SocketDir, startSidecarGuard, type SidecarGuard } from "./sidecar-guard.ts";

/** How late after its deadline a thaw may land on this machine (the issue allows 1 s). */
const LATE_MS = 200;

describe("thaw guard as a sidecar", function () {
  let host: LibvirtTestHost;
  let guests: Guests;
  let log: GuardLog;
  let dir: SocketDir;
  let guards: SidecarGuard[];
  let clients: ClientProcess[];
  let inProcess: ThawGuard[];

  before(async () => {
    host = await useLibvirtTestHost();
  });
  beforeEach(() => {
    guests = new Guests(host);
    log = new GuardLog();
    dir = new SocketDir();
    guards = [];
    clients = [];
    inProcess = [];
  });
  afterEach(async function () {
    for (const guard of inProcess) await guard.close();
    // Only processes this test started, by pid, and only if still there.
    for (const client of clients) client.kill();
    for (const guard of guards) guard.kill("SIGKILL");
    await guests.cleanup();
    if (this.currentTest?.state === "failed") console.error(log.text());
    log.dispose();
    dir.dispose();
  });

  async function guard(): Promise<SidecarGuard> {
    const started = await startSidecarGuard(host.uri, dir.socketPath, log);
    guards.push(started);
    return started;
  }
  async function client(): Promise<ClientProcess> {
    const started = await ClientProcess.start(dir.socketPath, host.uri, log);
    clients.push(started);
    return started;
  }
  async function connect(
    options: Partial<Parameters<typeof ThawGuard.connect>[0]> = {},
  ): Promise<ThawGuard> {
    const connected = await ThawGuard.connect({ socketPath: dir.socketPath, ...options });
    inProcess.push(connected);
    return connected;
  }

  describe("a client dies", () => {
    it("thaws within a second when its client is SIGKILLed, keeps running, and serves the next client", async () => {
      const g = await guard();
      const name = await guests.running("client-killed");
      const a = await client();
      expect(a.events[0]).to.include({ guardPid: g.pid });
      const armed = await a.request({ op: "arm", id: "snap-a", domain: name, inMs: 60_000 });
      expect(armed, "armed").to.include({ ok: true });
      expect(await a.request({ op: "freeze", domain: name })).to.include({ ok: true, frozen: 2 });

      const killedAt = Date.now();
      a.kill();
      const thawedAt = await when(
        "the guest to be thawed",
        async () => !(await host.isFrozen(name)),
        3_000,
      );
      // The guard logs after it thawed: its line may trail what libvirt shows.
      await when("the guard's log", () => log.find("fired", { domain: name }).length > 0, 1_000);
      const [fired] = log.find("fired", { domain: name });
      expect(fired, log.text()).to.include({ cause: "orphaned", outcome: "thawed", thawed: 2 });
      const thawMs = Date.parse(fired!.time) - killedAt;
      console.log(
        `      arm ${(armed.ms as number).toFixed(2)} ms; guard thawed ${thawMs} ms after SIGKILL (seen thawed after ${thawedAt - killedAt} ms)`,
      );
      expect(thawMs).to.be.below(1_000);
      expect(thawedAt - killedAt).to.be.below(1_000);

      expect(hasExited(g.pid), "the guard lives on").to.equal(false);
      const next = await guests.frozen("next-client");
      const b = await client();
      const deadline = Date.now() + 500;
      expect(await b.request({ op: "arm", id: "snap-b", domain: next, inMs: 500 })).to.include({
        ok: true,
      });
      const nextThawedAt = await when(
        "the next client's guest to be thawed",
        async () => !(await host.isFrozen(next)),
        3_000,
      );
      expect(nextThawedAt - deadline).to.be.within(0, LATE_MS);
      await when("the guard's log", () => log.find("fired", { domain: next }).length > 0, 1_000);
      expect(log.find("fired", { domain: next })[0]).to.include({ cause: "deadline" });
    });

    it("keeps each client's entries apart: one leaving thaws only its own guests", async () => {
      await guard();
      const [a, b] = [await guests.frozen("own-a"), await guests.frozen("own-b")];
      const first = await connect();
      const second = await connect();
      await first.arm({ id: "same-id", domain: a, deadline: Date.now() + 60_000 });
      await second.arm({ id: "same-id", domain: b, deadline: Date.now() + 60_000 });
      expect(log.find("client connected").map((r) => r.level)).to.deep.equal(["info", "warn"]);

      await second.close();
      expect(await host.isFrozen(b), "the leaving client's guest").to.equal(false);
      expect(await host.isFrozen(a), "the other client's guest").to.equal(true);
      await first.close();
      expect(await host.isFrozen(a)).to.equal(false);
      expect(log.find("fired").map((r) => [r.domain, r.cause])).to.deep.equal([
        [b, "orphaned"],
        [a, "orphaned"],
      ]);
    });
  });

  describe("the guard restarts", () => {
    it("reconnects a client to the restarted guard and re-arms its entries: thawed at the deadline", async () => {
      const first = await guard();
      const name = await guests.running("guard-restart");
      const c = await client();
      const deadline = Date.now() + 4_000;
      const armed = await c.request({ op: "arm", id: "snap-r", domain: name, inMs: 4_000 });
      expect(armed, JSON.stringify(c.events)).to.include({ ok: true });
      expect(await c.request({ op: "freeze", domain: name })).to.include({ ok: true, frozen: 2 });

      first.kill("SIGKILL");
      await when("the client to notice", () => c.events.some((e) => e.event === "lost"), 3_000);
      expect(await host.isFrozen(name), "a SIGKILLed guard thaws nothing").to.equal(true);
      const second = await guard(); // on the socket file the first one left behind
      expect(log.find("replaced the socket of a guard that is gone")).to.have.length(1);
      await when("the re-arm", () => log.find("armed", { id: "snap-r" }).length === 2, 3_000);

      await until(deadline - 150);
      expect(await host.isFrozen(name), "nobody thawed it early").to.equal(true);
      const thawedAt = await when("the thaw", async () => !(await host.isFrozen(name)), 3_000);
      expect(thawedAt - deadline).to.be.within(0, LATE_MS);
      // The guard logs and reports after it thawed: both may trail what libvirt shows.
      await when("the client's report", () => c.events.some((e) => e.event === "thawed"), 1_000);
      expect(log.find("fired", { id: "snap-r" })).to.have.length(1);
      expect(log.find("fired", { id: "snap-r" })[0]).to.include({ cause: "deadline" });
      expect(hasExited(second.pid)).to.equal(false);
    });

    it("fails arms with GuardUnavailableError while no guard answers, then works again", async () => {
      const g = await guard();
      const name = await guests.running("unreachable");
      const c = await connect({ ackTimeoutMs: 500 });
      g.kill("SIGKILL");
      await g.exited;
      const started = Date.now();
      const err = await c
        .arm({ id: "snap-u", domain: name, deadline: Date.now() + 60_000 })
        .catch((e: unknown) => e);
      expect(err, "arm without a guard").to.be.instanceOf(GuardUnavailableError);
      expect(Date.now() - started).to.be.within(450, 900);

      const back = await guard();
      await when("the reconnect", () => c.pid === back.pid, 5_000);
      await c.arm({ id: "snap-v", domain: name, deadline: Date.now() + 60_000 });
      // The guard acknowledges before it logs.
      await when("the guard's log", () => log.find("armed").length > 0, 1_000);
      expect(
        log.find("armed").map((r) => r.id),
        "the failed arm is not re-armed",
      ).to.deep.equal(["snap-v"]);
    });

    it("ThawGuard.connect fails when no guard answers within its start timeout", async () => {
      const started = Date.now();
      const err = await ThawGuard.connect({
        socketPath: dir.socketPath,
        startTimeoutMs: 400,
      }).catch((e: unknown) => e);
      expect((err as Error).message).to.match(/no thaw guard answered at .* within 400 ms/);
      expect(Date.now() - started).to.be.within(350, 1_000);
    });
  });

  describe("deadlines and stopping", () => {
    let reports: ThawedReply[];
    beforeEach(() => {
      reports = [];
    });

    it("thaws a frozen guest at its deadline, not before, within 200 ms", async () => {
      await guard();
      const c = await connect({ onThawed: (r) => reports.push(r) });
      const name = await guests.frozen("deadline");
      const deadline = Date.now() + 800;
      await c.arm({ id: "snap-d", domain: name, deadline });
      await until(deadline - 150);
      expect(await host.isFrozen(name), "still frozen shortly before").to.equal(true);
      const thawedAt = await when("the thaw", async () => !(await host.isFrozen(name)), 3_000);
      expect(thawedAt - deadline).to.be.within(0, LATE_MS);
      await when("the report", () => reports.length > 0, 1_000);
      expect(reports[0]).to.include({ id: "snap-d", cause: "deadline", thawed: 2 });
    });

    it("never thaws a disarmed entry", async () => {
      await guard();
      const c = await connect({ onThawed: (r) => reports.push(r) });
      const name = await guests.frozen("disarm");
      const deadline = Date.now() + 300;
      await c.arm({ id: "snap-x", domain: name, deadline });
      await c.disarm("snap-x");
      await until(deadline + 400);
      expect(reports).to.deep.equal([]);
      expect(await host.wasFrozen(name)).to.equal(true);
    });

    it("on SIGTERM thaws every client's guests at once, refuses new arms, and removes its socket", async () => {
      const g = await guard();
      const [a, b] = [await guests.frozen("term-a"), await guests.frozen("term-b")];
      const first = await connect({ onThawed: (r) => reports.push(r) });
      const second = await connect({ ackTimeoutMs: 500 });
      await first.arm({ id: "a", domain: a, deadline: Date.now() + 60_000 });
      await second.arm({ id: "b", domain: b, deadline: Date.now() + 60_000 });
      const stoppedAt = Date.now();
      g.kill("SIGTERM");
      expect(await g.exited).to.equal(0);
      expect(Date.now() - stoppedAt).to.be.below(1_000);
      expect(await host.isFrozen(a)).to.equal(false);
      expect(await host.isFrozen(b)).to.equal(false);
      expect(reports.map((r) => [r.id, r.cause])).to.deep.equal([["a", "terminated"]]);
      expect(() => statSync(dir.socketPath), "socket removed").to.throw(/ENOENT/);
      const err = await second
        .arm({ id: "c", domain: b, deadline: Date.now() + 60_000 })
        .catch((e: unknown) => e);
      expect(err).to.be.instanceOf(GuardUnavailableError);
    });
  });

  describe("its socket", () => {
    it("is created 0600, and another guard will not take it over while this one answers", async () => {
      const g = await guard();
      expect(statSync(dir.socketPath).mode & 0o777).to.equal(0o600);
      const err = await startSidecarGuard(host.uri, dir.socketPath, log).catch((e: unknown) => e);
      expect(String(err)).to.match(/exited \(1\)/);
      expect(log.find("cannot listen")[0]?.error).to.match(/another thaw guard is listening/);
      expect(hasExited(g.pid)).to.equal(false);
    });

    it("is never made over a file that is not a socket", async () => {
      writeFileSync(dir.socketPath, "precious");
      const err = await startSidecarGuard(host.uri, dir.socketPath, log).catch((e: unknown) => e);
      expect(String(err)).to.match(/exited \(1\)/);
      expect(log.find("cannot listen")[0]?.error).to.match(/is not a socket/);
    });
  });
});
