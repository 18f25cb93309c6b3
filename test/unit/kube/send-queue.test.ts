// The Events' send queue: a few sends at once, a cap on what waits (dropping the oldest), and a
// drain that waits for both the waiting and the running.
import { expect } from "chai";
import { SendQueue } from "../../../src/kube/send-queue.ts";

/** A send that runs until released, recording when it started. */
function gate(log: string[], name: string) {
  let release!: () => void;
  const done = new Promise<void>((resolve) => (release = resolve));
  const send = async () => {
    log.push(`start ${name}`);
    await done;
    log.push(`end ${name}`);
  };
  return { send, release };
}

const tick = () => new Promise((resolve) => setImmediate(resolve));

describe("SendQueue", () => {
  it("runs at most `concurrency` sends at once, starting the next as one ends, in push order", async () => {
    const log: string[] = [];
    const q = new SendQueue({ concurrency: 2 });
    const sends = ["a", "b", "c", "d"].map((n) => gate(log, n));
    for (const s of sends) q.push(s.send);
    await tick();
    expect(log).to.deep.equal(["start a", "start b"]);
    expect(q.pending).to.equal(4);
    sends[1]!.release();
    await tick();
    expect(log).to.deep.equal(["start a", "start b", "end b", "start c"]);
    for (const s of sends) s.release();
    await q.drained();
    expect(log.filter((l) => l.startsWith("end"))).to.have.length(4);
    expect(q.pending).to.equal(0);
  });

  it("when full, drops the oldest waiting send (never one in flight) and says how many so far", async () => {
    const log: string[] = [];
    const drops: number[] = [];
    const q = new SendQueue({ concurrency: 1, capacity: 2, onDrop: (n) => drops.push(n) });
    const sends = ["a", "b", "c", "d", "e"].map((n) => gate(log, n));
    for (const s of sends) q.push(s.send);
    await tick();
    // a runs; b, c, d, e arrived for 2 places: b and c were dropped.
    expect(drops).to.deep.equal([1, 2]);
    for (const s of sends) s.release();
    await q.drained();
    expect(log).to.deep.equal(["start a", "end a", "start d", "end d", "start e", "end e"]);
  });

  it("a send that rejects frees its place like one that resolves", async () => {
    const q = new SendQueue({ concurrency: 1 });
    const ran: string[] = [];
    q.push(() => Promise.reject(new Error("API server said no")));
    q.push(async () => {
      ran.push("next");
    });
    await q.drained();
    expect(ran).to.deep.equal(["next"]);
  });

  it("drained() resolves at once when idle", async () => {
    await new SendQueue().drained();
  });
});
