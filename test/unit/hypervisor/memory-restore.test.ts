// The order of a memory restore and the thaw that must follow it, against a scripted port: the
// image is restored paused, the caller's guard runs before the resume, the thaw is retried while
// the agent is not connected yet, and success means the agent itself says "thawed".
import { expect } from "chai";
import { HypervisorError } from "../../../src/hypervisor/errors.ts";
import { SaveRestoreFlags } from "../../../src/hypervisor/flags.ts";
import {
  restoreMemoryAndThaw,
  thawConfirmed,
  type MemoryRestorePort,
} from "../../../src/hypervisor/memory-restore.ts";

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
  const hv: MemoryRestorePort = {
    restore: async (file, o) => {
      calls.push(`restore ${file} flags=${o?.flags} xml=${o?.xml !== undefined}`);
    },
    resume: async (name) => {
      calls.push(`resume ${name}`);
    },
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

describe("memory restore", () => {
  it("restores paused with the given XML, runs beforeResume, resumes, thaws and confirms — in that order", async () => {
    const { hv, calls } = port();
    const timings = await restoreMemoryAndThaw(hv, {
      domain: "web",
      file: "/m/web.mem",
      xml: "<domain/>",
      thawTimeoutMs: 1000,
      beforeResume: async () => {
        calls.push("guard armed");
      },
    });
    expect(calls).to.deep.equal([
      `restore /m/web.mem flags=${SaveRestoreFlags.Paused} xml=true`,
      "guard armed",
      "resume web",
      "thaw web",
      "status web",
    ]);
    expect(timings.thawAttempts).to.equal(1);
    expect(timings.thawedFilesystems).to.equal(2);
    expect(timings.resumeToThawMs).to.be.at.least(0);
  });

  it("retries the thaw while the agent's channel is not connected yet", async () => {
    const { hv, calls } = port({ agentUpAt: 4 });
    const timings = await restoreMemoryAndThaw(hv, {
      domain: "web",
      file: "/m/web.mem",
      xml: "<domain/>",
      thawTimeoutMs: 1000,
      retryDelayMs: 1,
    });
    expect(timings.thawAttempts).to.equal(4);
    expect(calls.filter((c) => c === "status web")).to.have.length(1);
  });

  it("never resumes when the guard cannot be armed", async () => {
    const { hv, calls } = port();
    const err = await restoreMemoryAndThaw(hv, {
      domain: "web",
      file: "/m/web.mem",
      xml: "<domain/>",
      thawTimeoutMs: 1000,
      beforeResume: () => Promise.reject(new Error("guard down")),
    }).catch((e: unknown) => e);
    expect(String(err)).to.contain("guard down");
    expect(calls).not.to.include("resume web");
  });

  it("fails with Timeout when the agent keeps saying frozen until the deadline", async () => {
    const { hv } = port({ status: () => "frozen" });
    const err = await thawConfirmed(hv, "web", Date.now() + 50, { retryDelayMs: 5 }).catch(
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
    const err = await thawConfirmed(hv, "web", Date.now() + 1000).catch((e: unknown) => e);
    expect((err as HypervisorError).reason).to.equal("DomainNotFound");
    expect(thaws).to.equal(1);
  });
});
