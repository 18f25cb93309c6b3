// The guard's timetable: an armed entry fires once — at its deadline, or at once when the guard
// drains — unless it was disarmed first. Real timers with short delays: the guard runs on them.
import { expect } from "chai";
import { setTimeout as sleep } from "node:timers/promises";

import type { ArmCommand, FireCause } from "../../../src/guard/protocol.ts";
import { ThawScheduler } from "../../../src/guard/scheduler.ts";

interface Fired {
  readonly id: string;
  readonly cause: FireCause;
  readonly at: number;
}

function entry(id: string, inMs: number): ArmCommand {
  return {
    type: "arm",
    id,
    domain: `vm-${id}`,
    deadline: Date.now() + inMs,
    resumeIfPaused: false,
  };
}

describe("thaw scheduler", () => {
  let fired: Fired[];
  let scheduler: ThawScheduler;

  beforeEach(() => {
    fired = [];
    scheduler = new ThawScheduler(async (e, cause) => {
      fired.push({ id: e.id, cause, at: Date.now() });
    });
  });
  afterEach(async () => {
    // Nothing may stay armed past a test: its timer would fire into the next one.
    for (const id of ["a", "b", "c"]) scheduler.disarm(id);
  });

  it("fires an entry at its deadline, not before", async () => {
    const e = entry("a", 60);
    scheduler.arm(e);
    await sleep(30);
    expect(fired).to.deep.equal([]);
    await sleep(80);
    expect(fired.map((f) => [f.id, f.cause])).to.deep.equal([["a", "deadline"]]);
    expect(fired[0]!.at - e.deadline).to.be.within(0, 40);
    expect(scheduler.size).to.equal(0);
  });

  it("never fires before the deadline, not even by a fraction of a millisecond", async () => {
    // Timers run on whole milliseconds of the loop's clock, whose fraction is not the wall
    // clock's: counted on them alone, a deadline can come up to a millisecond early.
    const clock = () => performance.timeOrigin + performance.now();
    const early: number[] = [];
    let count = 0;
    const precise = new ThawScheduler(async (e) => {
      count++;
      if (clock() < e.deadline) early.push(clock() - e.deadline);
    }, clock);
    for (let i = 0; i < 40; i++)
      precise.arm({ ...entry(`p${i}`, 0), deadline: clock() + 5 + i * 0.37 });
    await sleep(60);
    expect(count).to.equal(40);
    expect(early, "ms fired before the deadline").to.deep.equal([]);
  });

  it("fires an entry whose deadline already passed at once", async () => {
    scheduler.arm(entry("a", -5_000));
    await sleep(5);
    expect(fired.map((f) => f.id)).to.deep.equal(["a"]);
  });

  it("never fires a disarmed entry, and says whether it was armed", async () => {
    scheduler.arm(entry("a", 20));
    expect(scheduler.disarm("a")).to.equal(true);
    expect(scheduler.disarm("a")).to.equal(false);
    await sleep(50);
    expect(fired).to.deep.equal([]);
  });

  it("reports an entry that already fired as not armed", async () => {
    scheduler.arm(entry("a", 0));
    await sleep(10);
    expect(scheduler.disarm("a")).to.equal(false);
    expect(fired).to.have.length(1);
  });

  it("replaces an entry armed again under the same id: one fire, at the new deadline", async () => {
    scheduler.arm(entry("a", 20));
    scheduler.arm(entry("a", 80));
    await sleep(50);
    expect(fired).to.deep.equal([]);
    await sleep(60);
    expect(fired.map((f) => f.id)).to.deep.equal(["a"]);
  });

  it("drains: fires everything armed at once and waits for fires already running", async () => {
    let release!: () => void;
    const slow = new Promise<void>((resolve) => (release = resolve));
    const order: string[] = [];
    scheduler = new ThawScheduler(async (e, cause) => {
      if (e.id === "a") await slow;
      order.push(`${e.id}:${cause}`);
    });
    scheduler.arm(entry("a", 0)); // fires by deadline and hangs
    await sleep(5);
    scheduler.arm(entry("b", 60_000));
    scheduler.arm(entry("c", 60_000));
    let drained = false;
    const draining = scheduler.drain("orphaned").then(() => (drained = true));
    await sleep(10);
    expect(order).to.deep.equal(["b:orphaned", "c:orphaned"]);
    expect(drained, "drain waits for the running fire").to.equal(false);
    release();
    await draining;
    expect(order).to.deep.equal(["b:orphaned", "c:orphaned", "a:deadline"]);
  });

  it("drains entries armed while draining too", async () => {
    let release!: () => void;
    const slow = new Promise<void>((resolve) => (release = resolve));
    scheduler = new ThawScheduler(async (e, cause) => {
      if (e.id === "a") await slow;
      fired.push({ id: e.id, cause, at: Date.now() });
    });
    scheduler.arm(entry("a", 60_000));
    const draining = scheduler.drain("terminated");
    scheduler.arm(entry("b", 60_000));
    release();
    await draining;
    expect(fired.map((f) => f.id).sort()).to.deep.equal(["a", "b"]);
    expect(scheduler.size).to.equal(0);
  });

  it("keeps firing the others when one fire fails", async () => {
    scheduler = new ThawScheduler(async (e, cause) => {
      if (e.id === "a") throw new Error("boom");
      fired.push({ id: e.id, cause, at: Date.now() });
    });
    scheduler.arm(entry("a", 60_000));
    scheduler.arm(entry("b", 60_000));
    await scheduler.drain("terminated");
    expect(fired.map((f) => f.id)).to.deep.equal(["b"]);
  });

  it("keeps the delay taken at arming when the wall clock jumps", async () => {
    let now = Date.now();
    scheduler = new ThawScheduler(
      async (e, cause) => void fired.push({ id: e.id, cause, at: Date.now() }),
      () => now,
    );
    scheduler.arm({
      type: "arm",
      id: "a",
      domain: "vm",
      deadline: now + 40,
      resumeIfPaused: false,
    });
    now -= 3_600_000; // NTP steps the clock an hour back
    await sleep(70);
    expect(fired.map((f) => f.id)).to.deep.equal(["a"]);
  });
});
