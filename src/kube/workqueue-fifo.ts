// The ready part of the work queue: first in, first out, O(1) at both ends. A plain array's
// shift() moves every element; a resync queues every cached key at once (10,000 on a busy host),
// so the head is an index instead and the consumed prefix is dropped in bulk.

export class Fifo<T> {
  private items: T[] = [];
  private head = 0;

  get length(): number {
    return this.items.length - this.head;
  }

  push(item: T): void {
    this.items.push(item);
  }

  shift(): T | undefined {
    if (this.head >= this.items.length) return undefined;
    const item = this.items[this.head]!;
    this.head += 1;
    // Compact once the consumed prefix is the larger half: amortised O(1), bounded garbage.
    if (this.head * 2 >= this.items.length) {
      this.items = this.items.slice(this.head);
      this.head = 0;
    }
    return item;
  }

  clear(): void {
    this.items = [];
    this.head = 0;
  }
}
