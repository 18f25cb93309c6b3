// How the guard thaws one guest: resume first when asked and paused, retry what may pass, stop
// at what cannot (the domain is stopped, not found, or has no agent). A fake hypervisor records
// the calls and fails them as the real one does, with typed HypervisorErrors.
import { expect } from "chai";

import type { DomainInfo } from "../../../src/hypervisor/index.ts";
import { HypervisorError, type HypervisorErrorReason } from "../../../src/hypervisor/index.ts";
import { thawGuest, type ThawPolicy, type ThawTarget } from "../../../src/hypervisor/thaw.ts";

const POLICY: ThawPolicy = {
  attempts: 4,
  retryDelayMs: 10,
  maxRetryDelayMs: 15,
  callTimeoutMs: 50,
};

type Step = number | HypervisorErrorReason;

/** A target whose fsThaw answers `thaws` in turn (a count, or a failure reason). */
function fakeTarget(state: DomainInfo["state"], thaws: Step[], stateAfter = state) {
  const calls: string[] = [];
  let current = state;
  const fail = (reason: HypervisorErrorReason, operation: "fsThaw" | "domainInfo") =>
    new HypervisorError(`${operation}: ${reason}`, { reason, operation });
  const target: ThawTarget = {
    async domainInfo(name) {
      calls.push("domainInfo");
      if (current === "unknown") throw fail("DomainNotFound", "domainInfo");
      return {
        name,
        uuid: "u",
        id: 1,
        state: current,
        reason: 0,
        active: current !== "shutoff",
        persistent: false,
      };
    },
    async resume() {
      calls.push("resume");
      current = "running";
    },
    async fsThaw() {
      calls.push("fsThaw");
      const step = thaws.shift();
      if (step === undefined) throw new Error("unexpected extra thaw");
      if (typeof step === "number") return step;
      current = stateAfter;
      throw fail(step, "fsThaw");
    },
  };
  return { target, calls };
}

const sleeps: number[] = [];
const fakeSleep = async (ms: number) => void sleeps.push(ms);

describe("thawing one guest", () => {
  beforeEach(() => (sleeps.length = 0));

  it("resumes a paused guest before thawing it when asked", async () => {
    const { target, calls } = fakeTarget("paused", [2]);
    const result = await thawGuest(target, "vm", true, POLICY, { sleep: fakeSleep });
    expect(calls).to.deep.equal(["domainInfo", "resume", "fsThaw"]);
    expect(result).to.deep.equal({ outcome: "thawed", thawed: 2, resumed: true, attempts: 1 });
  });

  it("leaves a running guest's vCPUs alone", async () => {
    const { target, calls } = fakeTarget("running", [0]);
    const result = await thawGuest(target, "vm", true, POLICY, { sleep: fakeSleep });
    expect(calls).to.deep.equal(["domainInfo", "fsThaw"]);
    expect(result).to.include({ outcome: "thawed", thawed: 0, resumed: false });
  });

  it("thaws the pinned domain (same UUID) as usual", async () => {
    const { target, calls } = fakeTarget("paused", [2]);
    const result = await thawGuest(target, "vm", true, POLICY, { sleep: fakeSleep, uuid: "u" });
    expect(calls).to.deep.equal(["domainInfo", "resume", "fsThaw"]);
    expect(result).to.include({ outcome: "thawed", thawed: 2 });
  });

  it("never touches a same-named domain with another UUID: lost, no resume, no thaw", async () => {
    const { target, calls } = fakeTarget("paused", [2]);
    const result = await thawGuest(target, "vm", true, POLICY, {
      sleep: fakeSleep,
      uuid: "the-frozen-one",
    });
    expect(calls).to.deep.equal(["domainInfo"]);
    expect(result).to.include({ outcome: "lost", thawed: 0, resumed: false });
    expect(String(result.lastError)).to.contain("the-frozen-one");
  });

  it("never resumes when not asked to, not even a paused guest", async () => {
    const { target, calls } = fakeTarget("paused", [2]);
    await thawGuest(target, "vm", false, POLICY, { sleep: fakeSleep });
    expect(calls).to.deep.equal(["fsThaw"]);
  });

  it("retries transient failures with growing, capped delays", async () => {
    const { target } = fakeTarget("running", [
      "Timeout",
      "GuestAgentUnresponsive",
      "ConnectionLost",
      2,
    ]);
    const result = await thawGuest(target, "vm", false, POLICY, { sleep: fakeSleep });
    expect(result).to.deep.equal({ outcome: "thawed", thawed: 2, resumed: false, attempts: 4 });
    expect(sleeps).to.deep.equal([10, 15, 15]);
  });

  it("gives up after the last attempt and names the last failure", async () => {
    const { target } = fakeTarget("running", [
      "Timeout",
      "Timeout",
      "Timeout",
      "GuestAgentUnresponsive",
    ]);
    const { lastError, ...result } = await thawGuest(target, "vm", false, POLICY, {
      sleep: fakeSleep,
    });
    expect(String(lastError)).to.contain("GuestAgentUnresponsive");
    expect(result).to.deep.equal({
      outcome: "failed",
      thawed: 0,
      resumed: false,
      attempts: 4,
      error: "GuestAgentUnresponsive",
    });
    expect(sleeps).to.have.length(3);
  });

  it("reports a domain that cannot be found as lost, not thawed: it may be frozen elsewhere", async () => {
    const { target, calls } = fakeTarget("running", ["DomainNotFound"]);
    const result = await thawGuest(target, "vm", false, POLICY, { sleep: fakeSleep });
    expect(result).to.include({ outcome: "lost", attempts: 1, error: "DomainNotFound" });
    expect(calls).to.deep.equal(["fsThaw"]);
  });

  it("reports lost when a not-running domain then cannot be found", async () => {
    const { target } = fakeTarget("running", ["DomainNotRunning"], "unknown");
    const result = await thawGuest(target, "vm", false, POLICY, { sleep: fakeSleep });
    expect(result).to.include({ outcome: "lost", attempts: 1 });
  });

  it("stops when the domain is not running because it was stopped", async () => {
    const { target } = fakeTarget("running", ["DomainNotRunning"], "shutoff");
    const result = await thawGuest(target, "vm", false, POLICY, { sleep: fakeSleep });
    expect(result).to.include({ outcome: "stopped", attempts: 1 });
  });

  it("with an unbounded policy, keeps trying past any budget and reports each retry", async () => {
    const failures: Step[] = Array.from({ length: 40 }, () => "ConnectionLost");
    const { target } = fakeTarget("running", [...failures, 2]);
    const retries: number[] = [];
    const result = await thawGuest(
      target,
      "vm",
      false,
      { ...POLICY, attempts: Number.POSITIVE_INFINITY },
      { sleep: fakeSleep, onRetry: (attempt) => retries.push(attempt) },
    );
    expect(result).to.deep.equal({ outcome: "thawed", thawed: 2, resumed: false, attempts: 41 });
    expect(retries).to.deep.equal(Array.from({ length: 40 }, (_, k) => k + 1));
    expect(sleeps.slice(0, 2)).to.deep.equal([10, 15]);
    expect(Math.max(...sleeps)).to.equal(15);
  });

  it("keeps trying a paused guest it may not resume (someone else may resume it)", async () => {
    const { target } = fakeTarget("paused", ["DomainNotRunning", "DomainNotRunning", 2]);
    const result = await thawGuest(target, "vm", false, POLICY, { sleep: fakeSleep });
    expect(result).to.include({ outcome: "thawed", thawed: 2, attempts: 3 });
  });

  it("does not retry what no retry can change: a guest without an agent channel", async () => {
    const { target, calls } = fakeTarget("running", ["GuestAgentNotConfigured"]);
    const result = await thawGuest(target, "vm", false, POLICY, { sleep: fakeSleep });
    expect(result).to.include({ outcome: "failed", attempts: 1, error: "GuestAgentNotConfigured" });
    expect(calls).to.deep.equal(["fsThaw"]);
  });

  it("resumes again on a retry when the guest got paused meanwhile", async () => {
    const { target, calls } = fakeTarget("running", ["Timeout", 2], "paused");
    const result = await thawGuest(target, "vm", true, POLICY, { sleep: fakeSleep });
    expect(calls).to.deep.equal(["domainInfo", "fsThaw", "domainInfo", "resume", "fsThaw"]);
    expect(result).to.include({ outcome: "thawed", resumed: true, attempts: 2 });
  });
});
