// Nothing the adapter does blocks Node's event loop, and a hung libvirt call starves nothing:
// not other libvirt calls, not Node's own thread pool (fs, crypto), not timers. And every hung
// call ends with Timeout at its deadline. Bounds are loose enough for a loaded 2-core machine
// yet far below what a blocked loop (seconds) or a starved pool (never) would show.
import { expect } from "chai";
import { pbkdf2 } from "node:crypto";
import { readFile } from "node:fs/promises";
import { promisify } from "node:util";

import { Hypervisor } from "../../../src/hypervisor/connection.ts";
import { HypervisorError } from "../../../src/hypervisor/errors.ts";
import { startSilentDaemon, type SilentDaemon } from "./silent-daemon.ts";
import { openTestHost, RUNNING, TEST_NODE_XML } from "./test-host.ts";

const MAX_TIMER_LAG_MS = 250;

/** Measures how late a 5 ms interval timer fires while it runs. */
function lagMonitor(): { stop(): { maxLagMs: number; ticks: number } } {
  const period = 5;
  let last = performance.now();
  let maxLagMs = 0;
  let ticks = 0;
  const timer = setInterval(() => {
    const now = performance.now();
    maxLagMs = Math.max(maxLagMs, now - last - period);
    last = now;
    ticks++;
  }, period);
  return {
    stop() {
      clearInterval(timer);
      return { maxLagMs, ticks };
    },
  };
}

describe("responsiveness under load and hung calls", function () {
  this.timeout(30_000);
  let silent: SilentDaemon;

  beforeEach(async () => {
    silent = await startSilentDaemon();
  });
  afterEach(async () => {
    await silent.stop();
  });

  it("answers 100 concurrent calls correctly while a timer keeps firing on time", async () => {
    const hv = await openTestHost();
    try {
      const lag = lagMonitor();
      const started = performance.now();
      let rounds = 0;
      while (performance.now() - started < 500) {
        const calls = Array.from({ length: 100 }, (_, i) =>
          i % 3 === 0
            ? hv.domainInfo(RUNNING).then((d) => d.state)
            : i % 3 === 1
              ? hv.fsInfo(RUNNING).then((f) => f.length)
              : hv.isActive(RUNNING),
        );
        const results = await Promise.all(calls);
        expect(results.filter((r) => r === "running")).to.have.length(34);
        expect(results.filter((r) => r === 2)).to.have.length(33);
        expect(results.filter((r) => r === true)).to.have.length(33);
        rounds++;
      }
      const { maxLagMs, ticks } = lag.stop();
      expect(rounds).to.be.above(3);
      expect(ticks).to.be.above(0);
      expect(maxLagMs, "timer lateness").to.be.below(MAX_TIMER_LAG_MS);
    } finally {
      await hv.close();
    }
  });

  it("fails an open against a daemon that never answers with Timeout within its deadline", async () => {
    const started = performance.now();
    const err = await Hypervisor.open(silent.uri, { openTimeoutMs: 300 }).then(
      () => undefined,
      (e: unknown) => e,
    );
    const elapsed = performance.now() - started;
    expect(err).to.be.instanceOf(HypervisorError);
    expect(err).to.include({ reason: "Timeout", operation: "open" });
    expect(elapsed).to.be.within(295, 1300);
    expect(silent.accepted(), "libvirt really reached the silent daemon").to.equal(1);
  });

  it("keeps libvirt calls, Node's thread pool and timers going while 100 calls hang", async () => {
    const hv = await openTestHost();
    try {
      const lag = lagMonitor();
      const deadlineMs = 3000;
      const started = performance.now();
      // Far more hung calls than libuv has pool threads (4): each must cost only its own thread.
      const hung = Array.from({ length: 100 }, () =>
        Hypervisor.open(silent.uri, { openTimeoutMs: deadlineMs }).then(
          () => "opened" as const,
          (e: unknown) => ({
            reason: (e as HypervisorError).reason,
            at: performance.now() - started,
          }),
        ),
      );
      while (silent.accepted() < 100 && performance.now() - started < deadlineMs)
        await new Promise((r) => setTimeout(r, 5));
      expect(silent.accepted(), "all 100 calls are hanging inside libvirt").to.equal(100);

      // Meanwhile: real libvirt work, Node's own pool work, all prompt.
      for (let i = 0; i < 50; i++) {
        expect(await hv.fsFreeze(RUNNING)).to.equal(2);
        expect(await hv.fsThaw(RUNNING)).to.equal(2);
      }
      const other = await openTestHost();
      await other.close();
      await Promise.all([
        readFile(TEST_NODE_XML),
        ...Array.from({ length: 8 }, () => promisify(pbkdf2)("pw", "salt", 1000, 32, "sha256")),
      ]);
      const workDone = performance.now();
      expect(
        workDone - started,
        "libvirt and pool work finished while the 100 calls still hung",
      ).to.be.below(deadlineMs);

      const outcomes = await Promise.all(hung);
      const { maxLagMs } = lag.stop();
      for (const outcome of outcomes) {
        expect(outcome).to.not.equal("opened");
        if (outcome === "opened") continue;
        expect(outcome.reason).to.equal("Timeout");
        expect(outcome.at).to.be.within(deadlineMs - 5, deadlineMs + 1000);
      }
      expect(maxLagMs, "timer lateness").to.be.below(MAX_TIMER_LAG_MS);
    } finally {
      await hv.close();
    }
  });
});
