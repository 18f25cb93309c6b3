// Deadlines on calls that may never return: the caller gets its answer on time, and whatever
// the abandoned call produces later is neither lost (onLate) nor reported twice.
import { expect } from "chai";
import { setTimeout as sleep } from "node:timers/promises";

import { withDeadline } from "../../../src/hypervisor/deadline.ts";

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
});
