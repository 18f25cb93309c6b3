// The guard's retry schedule: quick at first, doubling, then level at the cap for as long as it
// takes; a bounded policy says when no try is left.
import { expect } from "chai";

import { isUnbounded, retryDelayMs } from "../../../src/hypervisor/thaw-backoff.ts";
import { GUARD_THAW_POLICY } from "../../../src/hypervisor/thaw.ts";

describe("thaw retry backoff", () => {
  const unbounded = {
    attempts: Number.POSITIVE_INFINITY,
    retryDelayMs: 100,
    maxRetryDelayMs: 1_000,
  };

  it("doubles from the first delay up to the cap, then stays there", () => {
    const delays = [1, 2, 3, 4, 5, 6, 7].map((a) => retryDelayMs(unbounded, a));
    expect(delays).to.deep.equal([100, 200, 400, 800, 1_000, 1_000, 1_000]);
  });

  it("never ends and never exceeds the cap, even after thousands of tries (2^n overflows)", () => {
    for (const attempt of [1_000, 1_025, 10_000, 1e9])
      expect(retryDelayMs(unbounded, attempt)).to.equal(1_000);
  });

  it("says no try is left once a bounded policy's attempts are used", () => {
    const bounded = { ...unbounded, attempts: 3 };
    expect([1, 2, 3, 4].map((a) => retryDelayMs(bounded, a))).to.deep.equal([
      100,
      200,
      undefined,
      undefined,
    ]);
    expect(isUnbounded(bounded)).to.equal(false);
  });

  it("is the guard's: unbounded; a 60 s outage costs a few dozen tries, one every 2 s", () => {
    expect(isUnbounded(GUARD_THAW_POLICY)).to.equal(true);
    let elapsed = 0;
    let attempt = 1;
    while (elapsed < 60_000) elapsed += retryDelayMs(GUARD_THAW_POLICY, attempt++)!;
    expect(attempt).to.be.within(25, 40);
    expect(retryDelayMs(GUARD_THAW_POLICY, attempt)).to.equal(2_000);
  });
});
