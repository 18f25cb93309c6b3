// Keys waiting for their time (requeue-after, rate-limited retries), ordered by when they become
// ready. One entry per key: asking for a key again keeps the earlier of the two times, as
// client-go's delaying queue does, so a long backoff never postpones an explicit requeue.

interface Entry {
  readonly key: string;
  readonly readyAt: number;
  /** Insertion order, so keys ready at the same instant come out in the order they were added. */
  readonly seq: number;
}

export class DelayHeap {
  private heap: Entry[] = [];
  /** The live entry of each key; heap entries that are not here were superseded (lazy deletion). */
  private readonly live = new Map<string, Entry>();
  private seq = 0;

  get size(): number {
    return this.live.size;
  }

  /** Schedules `key` at `readyAt` unless it is already due sooner. Returns whether it changed. */
  schedule(key: string, readyAt: number): boolean {
    const current = this.live.get(key);
    if (current && current.readyAt <= readyAt) return false;
    const entry = { key, readyAt, seq: this.seq++ };
    this.live.set(key, entry);
    this.push(entry);
    return true;
  }

  /** When the earliest key becomes ready, or undefined when nothing waits. */
  nextReadyAt(): number | undefined {
    this.dropSuperseded();
    return this.heap[0]?.readyAt;
  }

  /** Removes and returns every key ready at `now`, earliest first. */
  popReady(now: number): string[] {
    const ready: string[] = [];
    for (;;) {
      this.dropSuperseded();
      const top = this.heap[0];
      if (!top || top.readyAt > now) return ready;
      this.pop();
      this.live.delete(top.key);
      ready.push(top.key);
    }
  }

  clear(): void {
    this.heap = [];
    this.live.clear();
  }

  private dropSuperseded(): void {
    while (this.heap.length > 0 && this.live.get(this.heap[0]!.key) !== this.heap[0]) this.pop();
  }

  private push(entry: Entry): void {
    const h = this.heap;
    h.push(entry);
    let i = h.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!before(h[i]!, h[parent]!)) break;
      [h[i], h[parent]] = [h[parent]!, h[i]!];
      i = parent;
    }
  }

  private pop(): void {
    const h = this.heap;
    const last = h.pop()!;
    if (h.length === 0) return;
    h[0] = last;
    let i = 0;
    for (;;) {
      const l = 2 * i + 1;
      const r = l + 1;
      let smallest = i;
      if (l < h.length && before(h[l]!, h[smallest]!)) smallest = l;
      if (r < h.length && before(h[r]!, h[smallest]!)) smallest = r;
      if (smallest === i) return;
      [h[i], h[smallest]] = [h[smallest]!, h[i]!];
      i = smallest;
    }
  }
}

function before(a: Entry, b: Entry): boolean {
  return a.readyAt < b.readyAt || (a.readyAt === b.readyAt && a.seq < b.seq);
}
