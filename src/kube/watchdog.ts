// A dead-man's switch for a watch stream. A TCP connection can die without either side noticing
// (a NAT entry expired, a firewall dropped it, the API server's host vanished): the stream then
// looks open and delivers nothing, forever. The API server sends bookmarks on a healthy watch,
// so silence longer than a few bookmark intervals means the stream is dead, and the informer
// starts a new one. Every event, bookmarks included, re-arms the switch.

export class Watchdog {
  private timer: NodeJS.Timeout | undefined;
  private timerAt = 0;
  private deadline = 0;

  constructor(
    private readonly silenceMs: number,
    private readonly onSilence: () => void,
  ) {}

  /** Something arrived: fire unless something else arrives within `ms` (the silence limit). */
  kick(ms = this.silenceMs): void {
    this.deadline = performance.now() + ms;
    // One timer that re-checks when it expires, rather than a new timer per event: a relist can
    // deliver thousands of events in a burst. Only a nearer deadline needs a new timer.
    if (this.timer === undefined || this.timerAt > this.deadline) this.arm();
  }

  stop(): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
  }

  private arm(): void {
    this.stop();
    const wait = Math.max(0, this.deadline - performance.now());
    this.timerAt = this.deadline;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      // Timers may fire a fraction of a millisecond early by performance.now().
      if (performance.now() >= this.deadline - 1) this.onSilence();
      else this.arm();
    }, wait);
  }
}
