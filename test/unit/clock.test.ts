import { expect } from "chai";
import { monotonicNow } from "../../src/clock.ts";
import { decodeCommand, encode } from "../../src/guard/protocol.ts";

describe("the agent's monotonic clock", () => {
  it("gives whole milliseconds near the wall clock that never go backwards", () => {
    let last = monotonicNow();
    for (let i = 0; i < 1000; i++) {
      const now = monotonicNow();
      expect(Number.isInteger(now), `${now} is whole`).to.equal(true);
      expect(now).to.be.at.least(last);
      last = now;
    }
    expect(Math.abs(last - Date.now())).to.be.below(5_000);
  });

  it("gives deadlines the thaw guard accepts", () => {
    const arm = {
      type: "arm",
      id: "a",
      domain: "d",
      deadline: monotonicNow() + 1500,
      resumeIfPaused: false,
    } as const;
    expect(decodeCommand(encode(arm))).to.deep.equal(arm);
  });
});
