// The thaw a memory restore owes its guest, against a scripted port: thawed, then confirmed by the
// agent itself; retried while the agent is not connected yet; a Timeout when the agent keeps
// saying frozen; no retry of a failure that is not the agent being away.
import { expect } from "chai";
import type { Hypervisor } from "../../../src/hypervisor/connection.ts";
import { HypervisorError } from "../../../src/hypervisor/errors.ts";
import { thawAndConfirm } from "../../../src/hypervisor/memory-restore.ts";

const agentAway = () =>
  new HypervisorError("agent not connected", {
    reason: "GuestAgentUnresponsive",
    operation: "fsThaw",
    target: "web",
  });

/** A port that records calls; the agent answers thaw only from the `agentUpAt`-th attempt on. */
function port(options: { agentUpAt?: number; status?: () => "frozen" | "thawed" } = {}) {
  const calls: string[] = [];
  let thaws = 0;
  const hv: Pick<Hypervisor, "fsThaw" | "freezeStatus"> = {
    fsThaw: async (name) => {
      thaws += 1;
      calls.push(`thaw ${name}`);
      if (thaws < (options.agentUpAt ?? 1)) throw agentAway();
      return 2;
    },
    freezeStatus: async (name) => {
      calls.push(`status ${name}`);
      return options.status?.() ?? "thawed";
    },
  };
  return { hv, calls };
}

describe("the thaw after a memory restore", () => {
  it("thaws, then asks the agent, which confirms", async () => {
    const { hv, calls } = port();
    const thawed = await thawAndConfirm(hv, "web", Date.now() + 1000);
    expect(calls).to.deep.equal(["thaw web", "status web"]);
    expect(thawed).to.include({ attempts: 1, filesystems: 2 });
  });

  it("dates the thaw when the thaw call returned, not when the agent confirmed it", async () => {
    let clock = 1_000;
    const hv: Pick<Hypervisor, "fsThaw" | "freezeStatus"> = {
      fsThaw: async () => {
        clock += 40; // the agent thaws
        return 2;
      },
      freezeStatus: async () => {
        clock += 25; // the confirmation's round trip
        return "thawed";
      },
    };
    const thawed = await thawAndConfirm(hv, "web", 10_000, { now: () => clock });
    expect(thawed).to.include({ at: 1_040, confirmedAt: 1_065, thawCallMs: 40, statusCallMs: 25 });
  });

  it("retries the thaw while the agent's channel is not connected yet", async () => {
    const { hv, calls } = port({ agentUpAt: 4 });
    const thawed = await thawAndConfirm(hv, "web", Date.now() + 1000, { retryDelayMs: 1 });
    expect(thawed.attempts).to.equal(4);
    expect(calls.filter((c) => c === "status web")).to.have.length(1);
  });

  it("fails with Timeout when the agent keeps saying frozen until the deadline", async () => {
    const { hv } = port({ status: () => "frozen" });
    const err = await thawAndConfirm(hv, "web", Date.now() + 50, { retryDelayMs: 5 }).catch(
      (e: unknown) => e,
    );
    expect(err).to.be.instanceOf(HypervisorError);
    expect((err as HypervisorError).reason).to.equal("Timeout");
    expect(String(err)).to.contain("still reports frozen");
  });

  it("does not retry a failure that is not the agent being away", async () => {
    const { hv } = port();
    let thaws = 0;
    hv.fsThaw = async () => {
      thaws += 1;
      throw new HypervisorError("no such domain", {
        reason: "DomainNotFound",
        operation: "fsThaw",
        target: "web",
      });
    };
    const err = await thawAndConfirm(hv, "web", Date.now() + 1000).catch((e: unknown) => e);
    expect((err as HypervisorError).reason).to.equal("DomainNotFound");
    expect(thaws).to.equal(1);
  });
});
