// A bounded queue of background sends (Events): a few in flight at once, so they keep up with
// the snapshots that cause them (one at a time, at 21 snapshots/s, 1,700 of 4,000 Events were
// still queued when the last snapshot finished), and a cap on what waits, so an API server that
// stops answering costs bounded memory. When full the oldest waiting send is dropped: Events are
// a best-effort record (client-go's broadcaster drops too), status is the record that counts.

export interface SendQueueOptions {
  /** Sends in flight at once (default 4: they share one HTTP/2 connection). */
  readonly concurrency?: number;
  /** Sends that may wait; beyond it the oldest waiting one is dropped (default 1000). */
  readonly capacity?: number;
  /** Called for each dropped send, with how many were dropped so far. */
  readonly onDrop?: (dropped: number) => void;
}

export class SendQueue {
  private readonly waiting: Array<() => Promise<void>> = [];
  private readonly concurrency: number;
  private readonly capacity: number;
  private readonly onDrop: (dropped: number) => void;
  private running = 0;
  private dropped = 0;
  private idle: Array<() => void> = [];

  constructor(options: SendQueueOptions = {}) {
    this.concurrency = options.concurrency ?? 4;
    this.capacity = options.capacity ?? 1000;
    this.onDrop = options.onDrop ?? (() => {});
  }

  /** Queues `send`; it must not reject (a failed send is the caller's to log). */
  push(send: () => Promise<void>): void {
    if (this.waiting.length >= this.capacity) {
      this.waiting.shift();
      this.onDrop(++this.dropped);
    }
    this.waiting.push(send);
    this.pump();
  }

  /** Sends waiting or in flight. */
  get pending(): number {
    return this.waiting.length + this.running;
  }

  /** Resolves once nothing waits and nothing is in flight. */
  drained(): Promise<void> {
    if (this.pending === 0) return Promise.resolve();
    return new Promise((resolve) => this.idle.push(resolve));
  }

  private pump(): void {
    while (this.running < this.concurrency && this.waiting.length > 0) {
      const send = this.waiting.shift()!;
      this.running++;
      void send()
        .catch(() => undefined)
        .finally(() => {
          this.running--;
          this.pump();
          if (this.pending === 0) for (const resolve of this.idle.splice(0)) resolve();
        });
    }
  }
}
