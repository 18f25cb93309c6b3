// The work queue as a specification: de-duplication, one worker per key, delays, per-key
// backoff, shutdown and drain, and what it reports to metrics. Time is simulated: nothing sleeps.
import { expect } from "chai";
import { WorkQueue } from "../../../src/kube/workqueue.ts";
import type { WorkQueueMetricsHooks } from "../../../src/kube/workqueue.ts";
import { ItemExponentialRateLimiter } from "../../../src/kube/backoff.ts";
import { FakeClock } from "./fake-clock.ts";

/** Takes every key that is ready now, without leaving a getter waiting. */
async function drainReady(queue: WorkQueue): Promise<string[]> {
  const keys: string[] = [];
  while (queue.len() > 0) keys.push((await queue.get())!);
  return keys;
}

/** Whether a promise has settled, checked after pending callbacks ran. */
async function settled(promise: Promise<unknown>): Promise<boolean> {
  let done = false;
  void promise.then(() => (done = true));
  await new Promise((resolve) => setImmediate(resolve));
  return done;
}

describe("WorkQueue", () => {
  let clock: FakeClock;
  let queue: WorkQueue;

  beforeEach(() => {
    clock = new FakeClock();
    queue = new WorkQueue({ clock });
  });

  describe("de-duplication", () => {
    it("hands out a key added twice before it was taken once", async () => {
      queue.add("ns/a");
      queue.add("ns/a");
      expect(queue.len()).to.equal(1);
      expect(await drainReady(queue)).to.deep.equal(["ns/a"]);
    });

    it("hands out distinct keys in the order they were first added", async () => {
      for (const key of ["ns/b", "ns/a", "ns/b", "ns/c", "ns/a"]) queue.add(key);
      expect(await drainReady(queue)).to.deep.equal(["ns/b", "ns/a", "ns/c"]);
    });
  });

  describe("a key being processed", () => {
    it("is not handed to a second worker when re-added, but again after done", async () => {
      queue.add("ns/a");
      const key = await queue.get();
      queue.add("ns/a");
      queue.add("ns/a");
      expect(queue.len(), "held back while the first worker has it").to.equal(0);
      const second = queue.get();
      expect(await settled(second)).to.equal(false);
      queue.done(key!);
      expect(await second).to.equal("ns/a");
      queue.done("ns/a");
      expect(queue.len(), "the two re-adds collapsed into one run").to.equal(0);
    });

    it("is not handed out again after done when nobody re-added it", async () => {
      queue.add("ns/a");
      queue.done((await queue.get())!);
      expect(queue.len()).to.equal(0);
      expect(queue.processingCount()).to.equal(0);
    });

    it("lets other keys through while one is being processed", async () => {
      queue.add("ns/a");
      await queue.get();
      queue.add("ns/b");
      queue.add("ns/a");
      expect(await drainReady(queue)).to.deep.equal(["ns/b"]);
    });
  });

  describe("waiting getters", () => {
    it("a waiting get receives a key added later; several waiters are served in order", async () => {
      const first = queue.get();
      const second = queue.get();
      expect(await settled(first)).to.equal(false);
      queue.add("ns/a");
      queue.add("ns/b");
      expect(await first).to.equal("ns/a");
      expect(await second).to.equal("ns/b");
    });
  });

  describe("addAfter", () => {
    it("holds a key until its delay has passed", async () => {
      queue.addAfter("ns/a", 1_000);
      clock.advance(999);
      expect(queue.len()).to.equal(0);
      clock.advance(1);
      expect(await drainReady(queue)).to.deep.equal(["ns/a"]);
    });

    it("releases keys in the order their delays end, ties in the order they were added", async () => {
      queue.addAfter("ns/late", 300);
      queue.addAfter("ns/early", 100);
      queue.addAfter("ns/tie-1", 200);
      queue.addAfter("ns/tie-2", 200);
      const order: string[] = [];
      for (let t = 0; t < 4; t++) {
        clock.advance(100);
        order.push(...(await drainReady(queue)));
      }
      expect(order).to.deep.equal(["ns/early", "ns/tie-1", "ns/tie-2", "ns/late"]);
    });

    it("keeps the earlier of two times asked for the same key, and runs it once", async () => {
      queue.addAfter("ns/a", 10_000);
      queue.addAfter("ns/a", 100);
      queue.addAfter("ns/b", 100);
      queue.addAfter("ns/b", 10_000);
      clock.advance(100);
      expect(await drainReady(queue)).to.deep.equal(["ns/a", "ns/b"]);
      clock.advance(10_000);
      expect(queue.len(), "the later request was absorbed").to.equal(0);
    });

    it("adds at once for a delay of zero or less", async () => {
      queue.addAfter("ns/a", 0);
      queue.addAfter("ns/b", -5);
      expect(await drainReady(queue)).to.deep.equal(["ns/a", "ns/b"]);
    });

    it("is de-duplicated against a key already queued", async () => {
      queue.add("ns/a");
      queue.addAfter("ns/a", 50);
      clock.advance(50);
      expect(await drainReady(queue)).to.deep.equal(["ns/a"]);
    });
  });

  describe("rate-limited retries", () => {
    /** The delay the queue applied to `key`: how long until it became ready. */
    async function observedDelay(key: string): Promise<number> {
      const start = clock.now();
      queue.addRateLimited(key);
      for (let elapsed = 0; queue.len() === 0; elapsed++) {
        if (elapsed > 2_000_000) throw new Error("never became ready");
        clock.advance(1);
      }
      queue.done((await queue.get())!);
      return clock.now() - start;
    }

    it("doubles the delay per failure from 5 ms", async () => {
      const delays = [];
      for (let i = 0; i < 6; i++) delays.push(await observedDelay("ns/a"));
      expect(delays).to.deep.equal([5, 10, 20, 40, 80, 160]);
      expect(queue.numRequeues("ns/a")).to.equal(6);
    });

    it("caps the delay at 1000 s", () => {
      const limiter = new ItemExponentialRateLimiter(5, 1_000_000);
      const delays = Array.from({ length: 40 }, () => limiter.when("ns/a"));
      expect(delays[17]).to.equal(5 * 2 ** 17);
      expect(delays.slice(18)).to.satisfy((d: number[]) => d.every((ms) => ms === 1_000_000));
    });

    it("applies the 1000 s cap through the queue", async () => {
      const capped = new WorkQueue({
        clock,
        rateLimiter: new ItemExponentialRateLimiter(5, 1_000_000),
      });
      for (let i = 0; i < 30; i++) capped.addRateLimited("ns/a");
      clock.advance(5);
      expect(capped.len(), "the first, 5 ms request won over the 29 longer ones").to.equal(1);
      capped.done((await capped.get())!);
      expect(capped.numRequeues("ns/a")).to.equal(30);
      capped.addRateLimited("ns/a");
      clock.advance(999_999);
      expect(capped.len()).to.equal(0);
      clock.advance(1);
      expect(capped.len()).to.equal(1);
    });

    it("forget resets the backoff of that key only", async () => {
      await observedDelay("ns/a");
      await observedDelay("ns/a");
      await observedDelay("ns/b");
      expect(await observedDelay("ns/a")).to.equal(20);
      queue.forget("ns/a");
      expect(queue.numRequeues("ns/a")).to.equal(0);
      expect(queue.numRequeues("ns/b")).to.equal(1);
      expect(await observedDelay("ns/a")).to.equal(5);
      expect(await observedDelay("ns/b")).to.equal(10);
    });

    it("limits retries of many keys together to 10/s after a burst of 100", () => {
      const keys = Array.from({ length: 120 }, (_, i) => `ns/k${i}`);
      for (const key of keys) queue.addRateLimited(key);
      clock.advance(5);
      expect(queue.len(), "the burst, each after its own 5 ms").to.equal(100);
      clock.advance(95);
      expect(queue.len(), "one more per 100 ms").to.equal(101);
      clock.advance(1_900);
      expect(queue.len()).to.equal(120);
    });
  });

  describe("shutdown", () => {
    it("resolves waiting getters with undefined and hands out nothing more", async () => {
      queue.add("ns/a");
      await queue.get();
      const waiting = [queue.get(), queue.get()];
      queue.addAfter("ns/later", 10);
      queue.add("ns/b");
      queue.shutDown();
      expect(await Promise.all(waiting)).to.deep.equal(["ns/b", undefined]);
      queue.add("ns/c");
      clock.advance(100);
      expect(await queue.get()).to.equal(undefined);
      expect(queue.len()).to.equal(0);
      expect(clock.pendingTimers, "the delay timer is cancelled").to.equal(0);
    });

    it("drops keys that were queued but not started", async () => {
      queue.add("ns/a");
      queue.add("ns/b");
      queue.shutDown();
      expect(queue.len()).to.equal(0);
      expect(await queue.get()).to.equal(undefined);
    });

    it("shutDownWithDrain resolves only after every key handed out is done", async () => {
      queue.add("ns/a");
      queue.add("ns/b");
      const a = (await queue.get())!;
      const b = (await queue.get())!;
      queue.add("ns/a");
      const drained = queue.shutDownWithDrain();
      expect(await settled(drained)).to.equal(false);
      queue.done(a);
      expect(await settled(drained)).to.equal(false);
      expect(queue.len(), "the re-added key is not run after shutdown").to.equal(0);
      queue.done(b);
      expect(await settled(drained)).to.equal(true);
    });

    it("shutDownWithDrain resolves at once when nothing is being processed", async () => {
      expect(await settled(queue.shutDownWithDrain())).to.equal(true);
    });
  });

  describe("metrics hooks", () => {
    it("report adds, depth, latencies, retries and work in progress", async () => {
      const seen = {
        adds: 0,
        retries: 0,
        depth: [] as number[],
        queue: [] as number[],
        work: [] as number[],
      };
      const metrics: WorkQueueMetricsHooks = {
        onAdd: () => seen.adds++,
        onRetry: () => seen.retries++,
        onDepth: (n) => seen.depth.push(n),
        onQueueLatency: (s) => seen.queue.push(s),
        onWorkDuration: (s) => seen.work.push(s),
      };
      const q = new WorkQueue({ clock, metrics });
      q.add("ns/a");
      q.add("ns/a");
      q.add("ns/b");
      expect(seen.adds, "a duplicate is not an add").to.equal(2);
      clock.advance(250);
      const a = (await q.get())!;
      expect(seen.queue).to.deep.equal([0.25]);
      clock.advance(1_000);
      const b = (await q.get())!;
      clock.advance(500);
      expect(q.unfinishedWorkSeconds()).to.equal(1.5 + 0.5);
      expect(q.longestRunningProcessorSeconds()).to.equal(1.5);
      q.done(a);
      expect(seen.work).to.deep.equal([1.5]);
      q.addAfter(b, 10);
      q.addRateLimited("ns/c");
      expect(seen.retries).to.equal(2);
      q.done(b);
      expect(q.longestRunningProcessorSeconds()).to.equal(0);
      expect(seen.depth).to.deep.equal([1, 2, 1, 0]);
    });
  });
});
