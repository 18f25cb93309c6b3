// The Hypervisor's connection handling, against a scripted addon: deadlines on every call, a
// lost connection noticed and replaced, event listeners carried over to the new connection,
// and the freeze failure told apart by asking the guest agent.
import { expect } from "chai";
import { setTimeout as sleep } from "node:timers/promises";

import { Hypervisor, type HypervisorOptions } from "../../../src/hypervisor/connection.ts";
import { HypervisorError } from "../../../src/hypervisor/errors.ts";
import type { LifecycleEvent } from "../../../src/hypervisor/events.ts";
import { CloseReason, DomainEventId } from "../../../src/hypervisor/flags.ts";
import { FakeBinding, nativeError, never } from "./fake-native.ts";

async function failure(promise: Promise<unknown>): Promise<HypervisorError> {
  const err = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err, "expected a rejection").to.be.instanceOf(HypervisorError);
  return err as HypervisorError;
}

function open(binding: FakeBinding, options: Partial<HypervisorOptions> = {}): Promise<Hypervisor> {
  return Hypervisor.open("qemu:///fake", {
    binding,
    callTimeoutMs: 1000,
    reconnectMinMs: 10,
    ...options,
  });
}

const lifecycle = (domain: string, event: number) => ({
  domain,
  uuid: "u-" + domain,
  event,
  detail: 0,
});

describe("Hypervisor connection handling", () => {
  describe("deadlines", () => {
    it("fails a call that never answers with Timeout at its deadline, and the next call still works", async () => {
      const binding = new FakeBinding();
      binding.script = { fsFreeze: never };
      const hv = await open(binding);
      const started = performance.now();
      const err = await failure(hv.fsFreeze("vm", [], { timeoutMs: 80 }));
      expect(performance.now() - started).to.be.within(79, 1000);
      expect(err).to.include({ reason: "Timeout", operation: "fsFreeze", target: "vm", code: -1 });
      expect(await hv.fsThaw("vm")).to.equal(2);
    });

    it("with one connection, never has two calls in libvirt: a call waits for a hung one, and one whose deadline passed while waiting is never sent", async () => {
      const binding = new FakeBinding();
      let release!: () => void;
      let thaws = 0;
      binding.script = {
        fsThaw: () => {
          thaws++;
          return thaws === 1
            ? new Promise<number>((r) => (release = () => r(2)))
            : Promise.resolve(2);
        },
      };
      const hv = await open(binding, { maxConnections: 1 });
      expect(await failure(hv.fsThaw("vm", { timeoutMs: 30 }))).to.include({ reason: "Timeout" });
      // Waits behind the hung call and times out without ever reaching libvirt.
      expect(await failure(hv.fsThaw("vm", { timeoutMs: 30 }))).to.include({ reason: "Timeout" });
      expect(thaws).to.equal(1);
      const third = hv.fsThaw("vm", { timeoutMs: 1_000 });
      await sleep(20);
      expect(thaws, "still waiting for the hung call").to.equal(1);
      release();
      expect(await third).to.equal(2);
      expect(thaws).to.equal(2);
    });

    it("fails an open that never completes with Timeout, and closes the connection if it lands later", async () => {
      const binding = new FakeBinding();
      let land!: () => void;
      binding.gate = () => new Promise<void>((resolve) => (land = resolve));
      const err = await failure(open(binding, { openTimeoutMs: 50 }));
      expect(err).to.include({ reason: "Timeout", operation: "open" });
      land();
      await sleep(10);
      expect(binding.connections).to.have.length(1);
      expect(binding.last.closed).to.equal(true);
    });

    it("passes the call's deadline to the guest agent, rounded up to whole seconds", async () => {
      const binding = new FakeBinding();
      const hv = await open(binding);
      await hv.guestPing("vm", { timeoutMs: 2500 });
      expect(binding.last.calls).to.deep.include([
        "qemuAgentCommand",
        ["vm", '{"execute":"guest-ping"}', 3],
      ]);
    });
  });

  describe("connections: one call at a time on each (libvirt 9.0's client crashed with several)", () => {
    /** Answers isActive after `ms`, counting the calls in flight on each connection. */
    function counting(binding: FakeBinding, ms: () => number) {
      const inFlight = new Map<number, number>();
      const most = new Map<number, number>();
      let opened = 0;
      const open = binding.open.bind(binding);
      binding.open = async (...args) => {
        const index = opened++;
        const conn = await open(...args);
        return {
          ...conn,
          isActive: async () => {
            inFlight.set(index, (inFlight.get(index) ?? 0) + 1);
            most.set(index, Math.max(most.get(index) ?? 0, inFlight.get(index)!));
            await sleep(ms());
            inFlight.set(index, inFlight.get(index)! - 1);
            return true;
          },
        };
      };
      return { most };
    }

    it("never has two calls in libvirt on one connection, however many run at once", async () => {
      const binding = new FakeBinding();
      const { most } = counting(binding, () => 1 + Math.random() * 5);
      const hv = await open(binding, { maxConnections: 4 });
      const results = await Promise.all(Array.from({ length: 40 }, () => hv.isActive("vm")));
      expect(Math.max(...most.values()), "calls in flight on one connection").to.equal(1);
      expect(results).to.deep.equal(Array.from({ length: 40 }, () => true));
      expect(binding.connections.length, "at most maxConnections").to.be.within(2, 4);
    });

    it("runs sequential calls on the first connection alone", async () => {
      const binding = new FakeBinding();
      const hv = await open(binding);
      for (let i = 0; i < 20; i++) expect(await hv.isActive("vm")).to.equal(true);
      expect(binding.connections).to.have.length(1);
    });

    it("a hung call holds only its own connection: the next calls go on at once on another", async () => {
      const binding = new FakeBinding();
      binding.script = { fsFreeze: never };
      const hv = await open(binding, { maxConnections: 2 });
      const hung = hv.fsFreeze("vm", [], { timeoutMs: 60 });
      binding.script = {};
      const started = performance.now();
      for (let i = 0; i < 5; i++) expect(await hv.fsThaw("vm", { timeoutMs: 500 })).to.equal(2);
      expect(performance.now() - started).to.be.below(200);
      expect(await failure(hung)).to.include({ reason: "Timeout" });
      expect(binding.connections).to.have.length(2);
    });

    it("with every connection busy, a call waits in line within its deadline; it is never sent once that passed", async () => {
      const binding = new FakeBinding();
      const answers: Array<() => void> = [];
      let sent = 0;
      binding.script = {
        fsThaw: () => {
          sent++;
          return new Promise<number>((r) => answers.push(() => r(2)));
        },
      };
      const hv = await open(binding, { maxConnections: 2 });
      const first = [hv.fsThaw("a", { timeoutMs: 2_000 }), hv.fsThaw("b", { timeoutMs: 2_000 })];
      await sleep(10);
      const waited = await failure(hv.fsThaw("c", { timeoutMs: 50 }));
      expect(waited).to.include({ reason: "Timeout" });
      expect(waited.message).to.match(/all 2 libvirt connections carry calls/);
      const next = hv.fsThaw("d", { timeoutMs: 2_000 });
      await sleep(10);
      expect(sent, "c was never sent; d waits").to.equal(2);
      answers[0]!();
      await sleep(10);
      expect(sent, "d went as soon as a connection came free").to.equal(3);
      answers[1]!();
      answers[2]!();
      expect(await Promise.all([...first, next])).to.deep.equal([2, 2, 2]);
    });

    it("starts a call's deadline in the caller's turn when a connection is free, so a stall right after it is seen as one", async () => {
      const binding = new FakeBinding();
      const hv = await open(binding);
      const call = hv.isActive("vm", { timeoutMs: 100 });
      const until = performance.now() + 400; // stopped right after the call began
      while (performance.now() < until);
      expect(await call).to.equal(true);
    });

    it("gives a test:///<file> driver one connection: each would hold a state of its own", async () => {
      const binding = new FakeBinding();
      binding.script = { isActive: () => sleep(5).then(() => true) };
      const hv = await Hypervisor.open("test:///tmp/host.xml", { binding, maxConnections: 8 });
      await Promise.all(Array.from({ length: 10 }, () => hv.isActive("vm")));
      expect(binding.connections).to.have.length(1);
    });
  });

  describe("lost connections", () => {
    it("reports libvirt's close reason and reconnects on the next call", async () => {
      const binding = new FakeBinding();
      const hv = await open(binding);
      const lost: string[] = [];
      let restored = 0;
      hv.onConnectionLost((reason) => lost.push(reason));
      hv.onReconnected(() => restored++);
      binding.last.onClose(CloseReason.Keepalive);
      expect(lost).to.deep.equal(["keepalive"]);
      expect(hv.connected).to.equal(false);
      expect(binding.connections[0]?.closed, "the dead native connection is released").to.equal(
        true,
      );
      await hv.domainInfo("vm");
      expect(binding.connections).to.have.length(2);
      expect(restored).to.equal(1);
    });

    it("drops a connection a call found dead (ConnectionLost), and reopens for the next call", async () => {
      const binding = new FakeBinding();
      binding.script = {
        suspend: () => Promise.reject(nativeError(1, 7, "client socket is closed", false)),
      };
      const hv = await open(binding);
      const err = await failure(hv.suspend("vm"));
      expect(err).to.include({ reason: "ConnectionLost", code: 1, domain: 7 });
      expect(hv.connected).to.equal(false);
      binding.script = {};
      await hv.suspend("vm");
      expect(binding.connections).to.have.length(2);
    });

    it("ignores a late close callback from a connection already replaced", async () => {
      const binding = new FakeBinding();
      const hv = await open(binding);
      const first = binding.last;
      first.onClose(CloseReason.Eof);
      await hv.domainInfo("vm");
      const lost: string[] = [];
      hv.onConnectionLost((r) => lost.push(r));
      first.onClose(CloseReason.Eof);
      expect(lost).to.deep.equal([]);
      expect(hv.connected).to.equal(true);
    });

    it("shares one reconnect among concurrent calls on a connection", async () => {
      const binding = new FakeBinding();
      const hv = await open(binding, { maxConnections: 1 });
      binding.last.onClose(CloseReason.Eof);
      await Promise.all(Array.from({ length: 20 }, () => hv.isActive("vm")));
      expect(binding.connections).to.have.length(2);
    });

    it("reconnects by itself while event listeners exist, re-registering them", async () => {
      const binding = new FakeBinding();
      const hv = await open(binding);
      const seen: LifecycleEvent[] = [];
      await hv.onLifecycle((e) => seen.push(e));
      binding.last.emit(DomainEventId.Lifecycle, lifecycle("a", 3));
      let failOpens = 2;
      binding.gate = async () => {
        if (failOpens-- > 0) throw nativeError(38, 7, "Failed to connect socket");
      };
      binding.last.onClose(CloseReason.Eof);
      // No call is made: the adapter retries with backoff (10, 20, 40 ms) until it is back.
      for (let i = 0; i < 50 && !hv.connected; i++) await sleep(10);
      expect(hv.connected).to.equal(true);
      expect(binding.connections).to.have.length(2);
      binding.last.emit(DomainEventId.Lifecycle, lifecycle("b", 4));
      expect(seen.map((e) => [e.domain, e.type])).to.deep.equal([
        ["a", "suspended"],
        ["b", "resumed"],
      ]);
    });
    it("bounds a reconnect whose event re-registration hangs, so later calls aren't wedged", async () => {
      const binding = new FakeBinding();
      const hv = await open(binding, { callTimeoutMs: 100, reconnectMinMs: 60_000 });
      await hv.onLifecycle(() => {});
      binding.registerGate = never;
      binding.last.onClose(CloseReason.Eof);
      expect(await failure(hv.domainInfo("vm"))).to.include({ reason: "Timeout" });
      binding.registerGate = () => Promise.resolve();
      await sleep(150); // the hung attempt gives up at its own deadline
      expect((await hv.domainInfo("vm")).state).to.equal("running");
      expect(binding.connections[1]?.closed, "the half-set-up connection is released").to.equal(
        true,
      );
    });

    it("closes a connection that finishes opening after close()", async () => {
      const binding = new FakeBinding();
      const hv = await open(binding);
      binding.last.onClose(CloseReason.Eof);
      let land!: () => void;
      binding.gate = () => new Promise<void>((resolve) => (land = resolve));
      const call = hv.domainInfo("vm");
      await sleep(5);
      await hv.close();
      land();
      expect(await failure(call)).to.include({ reason: "ConnectionLost" });
      expect(binding.last.closed).to.equal(true);
    });
  });

  describe("events", () => {
    it("registers once per kind and deregisters when the last listener leaves", async () => {
      const binding = new FakeBinding();
      const hv = await open(binding);
      const a: string[] = [];
      const b: string[] = [];
      const offA = await hv.onAgentLifecycle((e) => a.push(`${e.domain}:${e.state}:${e.reason}`));
      const offB = await hv.onAgentLifecycle((e) => b.push(e.state));
      expect(binding.last.events.size).to.equal(1);
      binding.last.emit(DomainEventId.AgentLifecycle, {
        domain: "vm",
        uuid: "u",
        event: 1,
        detail: 2,
      });
      await offA();
      binding.last.emit(DomainEventId.AgentLifecycle, {
        domain: "vm",
        uuid: "u",
        event: 2,
        detail: 2,
      });
      expect(a).to.deep.equal(["vm:connected:channel"]);
      expect(b).to.deep.equal(["connected", "disconnected"]);
      expect(binding.last.events.size).to.equal(1);
      await offB();
      expect(binding.last.events.size).to.equal(0);
    });
  });

  describe("freeze failures with code 1", () => {
    const frozenFailure = () => Promise.reject(nativeError(1, 10, "guest agent failure"));

    it("is AlreadyFrozen when the agent says the guest is frozen", async () => {
      const binding = new FakeBinding();
      binding.script = {
        fsFreeze: frozenFailure,
        qemuAgentCommand: async () => '{"return":"frozen"}',
      };
      const hv = await open(binding);
      const err = await failure(hv.fsFreeze("vm"));
      expect(err).to.include({
        reason: "AlreadyFrozen",
        code: 1,
        domain: 10,
        operation: "fsFreeze",
      });
      expect(binding.last.calls.map(([m, args]) => [m, args[1]])).to.deep.include([
        "qemuAgentCommand",
        '{"execute":"guest-fsfreeze-status"}',
      ]);
    });

    it("is QuiesceHookFailed when the agent says thawed", async () => {
      const binding = new FakeBinding();
      binding.script = {
        fsFreeze: frozenFailure,
        qemuAgentCommand: async () => '{"return":"thawed"}',
      };
      const hv = await open(binding);
      expect(await failure(hv.fsFreeze("vm"))).to.include({ reason: "QuiesceHookFailed" });
    });

    it("is QuiesceHookFailed when the agent can't be asked", async () => {
      const binding = new FakeBinding();
      binding.script = {
        fsFreeze: frozenFailure,
        qemuAgentCommand: () => Promise.reject(nativeError(86, 10, "x")),
      };
      const hv = await open(binding);
      expect(await failure(hv.fsFreeze("vm"))).to.include({ reason: "QuiesceHookFailed" });
    });
  });

  describe("guest agent replies", () => {
    it("reads guest-fsfreeze-status", async () => {
      const binding = new FakeBinding();
      binding.script = { qemuAgentCommand: async () => '{"return":"frozen"}' };
      const hv = await open(binding);
      expect(await hv.freezeStatus("vm")).to.equal("frozen");
    });

    it("rejects a reply that is not a freeze status", async () => {
      const binding = new FakeBinding();
      binding.script = { qemuAgentCommand: async () => '{"return":"melting"}' };
      const hv = await open(binding);
      expect(await failure(hv.freezeStatus("vm"))).to.include({
        reason: "Unknown",
        operation: "freezeStatus",
      });
    });
  });

  describe("close", () => {
    it("closes the native connection; later calls fail with ConnectionLost without reopening", async () => {
      const binding = new FakeBinding();
      const hv = await open(binding);
      await hv.close();
      expect(binding.last.closed).to.equal(true);
      expect(await failure(hv.domainXml("vm"))).to.include({ reason: "ConnectionLost" });
      expect(binding.connections).to.have.length(1);
    });
  });
});
