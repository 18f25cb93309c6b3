// Deadlines on calls that may never return: the caller gets its answer on time, and whatever
// the abandoned call produces later is neither lost (onLate) nor reported twice. A deadline
// that passed while this process was not running is not the call's fault: an answer that came
// meanwhile is used, and no answer is reported as a stall of the process.
import { expect } from "chai";
import { pbkdf2 } from "node:crypto";
import { setTimeout as sleep } from "node:timers/promises";
import { promisify } from "node:util";

import {
  STALL_GRACE_MS,
  STALL_THRESHOLD_MS,
  withDeadline,
  type Stall,
} from "../../../src/hypervisor/deadline.ts";

/** Blocks the event loop, as a long GC pause or a CPU-bound stretch of JavaScript would. */
function blockEventLoop(ms: number): void {
  const until = performance.now() + ms;
  while (performance.now() < until);
}

describe("withDeadline", () => {
  it("passes a result that comes in time", async () => {
    expect(await withDeadline(Promise.resolve(7), 1000, () => new Error("late"))).to.equal(7);
  });

  it("passes a failure that comes in time", async () => {
    const err = await withDeadline(
      Promise.reject(new Error("no")),
      1000,
      () => new Error("late"),
    ).catch((e: Error) => e);
    expect(err).to.have.property("message", "no");
  });

  it("rejects with the timeout error when the work never settles, on time", async () => {
    const started = performance.now();
    const err = await withDeadline(new Promise(() => {}), 50, () => new Error("deadline")).catch(
      (e: Error) => e,
    );
    const elapsed = performance.now() - started;
    expect(err).to.have.property("message", "deadline");
    expect(elapsed).to.be.within(49, 1000);
  });

  it("hands a result arriving after the deadline to onLate", async () => {
    const late: number[] = [];
    const work = sleep(60).then(() => 42);
    await withDeadline(
      work,
      10,
      () => new Error("deadline"),
      (v) => late.push(v),
    ).catch(() => {});
    expect(late).to.deep.equal([]);
    await sleep(80);
    expect(late).to.deep.equal([42]);
  });

  it("swallows a failure arriving after the deadline (no unhandled rejection)", async () => {
    const unhandled: unknown[] = [];
    const record = (reason: unknown) => unhandled.push(reason);
    process.on("unhandledRejection", record);
    try {
      const work = sleep(30).then(() => {
        throw new Error("late failure");
      });
      await withDeadline(work, 5, () => new Error("deadline")).catch(() => {});
      await sleep(60);
      expect(unhandled).to.deep.equal([]);
    } finally {
      process.off("unhandledRejection", record);
    }
  });

  describe("when this process did not run across the deadline", () => {
    it("delivers an answer that came while the event loop was blocked past the deadline, not a timeout", async () => {
      // pbkdf2 runs on libuv's pool, as the addon's calls run on its threads: it finishes
      // during the block, and Node would fire the due timer before delivering it.
      const work = promisify(pbkdf2)("pw", "salt", 1, 32, "sha256").then(() => "answered");
      const outcome = withDeadline(work, 50, (stall) =>
        Object.assign(new Error("deadline"), { stall }),
      );
      blockEventLoop(STALL_THRESHOLD_MS + 300);
      expect(await outcome.catch((e: Error) => e.message)).to.equal("answered");
    });

    it("delivers it too when the block was shorter than a stall (a busy moment, not a pause)", async () => {
      const work = promisify(pbkdf2)("pw", "salt", 1, 32, "sha256").then(() => "answered");
      const outcome = withDeadline(work, 20, () => new Error("deadline"));
      blockEventLoop(100);
      expect(await outcome.catch((e: Error) => e.message)).to.equal("answered");
    });

    it("waits a grace after a stall for an answer the stopped process had not read yet", async () => {
      let skew = 0;
      const clock = { now: () => performance.now() + skew };
      let answer!: (v: string) => void;
      const work = new Promise<string>((resolve) => (answer = resolve));
      const outcome = withDeadline(work, 30, () => new Error("deadline"), undefined, clock);
      skew = 5_000; // the process "was stopped" for 5 s when the deadline timer fires
      await sleep(60);
      answer("answered after the stall");
      expect(await outcome).to.equal("answered after the stall");
    });

    it("reports a stall, with its length, when no answer comes in the grace either", async () => {
      let skew = 0;
      const clock = { now: () => performance.now() + skew };
      const started = performance.now();
      const outcome = withDeadline(
        new Promise(() => {}),
        30,
        (stall) => Object.assign(new Error("deadline"), { stall }),
        undefined,
        clock,
      );
      skew = 5_000;
      const err = (await outcome.catch((e: unknown) => e)) as Error & { stall?: Stall };
      expect(err.message).to.equal("deadline");
      // Node's timers may fire up to a millisecond before their time (libuv's clock is whole
      // milliseconds): the stall measured is the skew, give or take that.
      expect(err.stall?.stalledMs).to.be.within(5_000 - 2, 5_000 + 500);
      expect(performance.now() - started).to.be.within(STALL_GRACE_MS, STALL_GRACE_MS + 1_000);
    });

    it("says nothing of a stall when the timer fired on time", async () => {
      const err = (await withDeadline(new Promise(() => {}), 20, (stall) =>
        Object.assign(new Error("deadline"), { stall }),
      ).catch((e: unknown) => e)) as Error & { stall?: Stall };
      expect(err.stall).to.equal(undefined);
    });
  });
});
