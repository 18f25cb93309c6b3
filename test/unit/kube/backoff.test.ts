// Reconnect backoff: doubles from the first delay to the cap, jitter only ever shortens a delay
// (never past half), and a reset starts over.
import { expect } from "chai";
import { ExponentialBackoff, realClock } from "../../../src/kube/backoff.ts";

describe("ExponentialBackoff", () => {
  it("doubles from 100 ms and stays at 30 s", () => {
    const backoff = new ExponentialBackoff({ random: () => 0 });
    const delays = Array.from({ length: 12 }, () => backoff.next());
    expect(delays).to.deep.equal([
      100, 200, 400, 800, 1_600, 3_200, 6_400, 12_800, 25_600, 30_000, 30_000, 30_000,
    ]);
    expect(backoff.attempts).to.equal(12);
  });

  it("takes up to half of each delay off at random", () => {
    const low = new ExponentialBackoff({ random: () => 0.999_999 });
    expect([low.next(), low.next(), low.next()]).to.deep.equal([50, 100, 200]);
    const spread = new ExponentialBackoff();
    for (let i = 0; i < 200; i++) {
      spread.reset();
      expect(spread.next()).to.be.within(50, 100);
    }
  });

  it("starts over after reset", () => {
    const backoff = new ExponentialBackoff({ random: () => 0 });
    backoff.next();
    backoff.next();
    backoff.reset();
    expect(backoff.attempts).to.equal(0);
    expect(backoff.next()).to.equal(100);
  });
});

describe("realClock timers", () => {
  it("a delay past Node's longest timer (a monthly schedule's ~30 days) waits instead of firing at once", async () => {
    let fired = false;
    const timer = realClock.setTimer(() => (fired = true), 30 * 24 * 3600_000);
    await new Promise((resolve) => setTimeout(resolve, 50));
    timer.cancel();
    expect(fired).to.equal(false);
  });
});
