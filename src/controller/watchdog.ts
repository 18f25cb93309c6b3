// A dead-man's switch for a watch stream. A TCP connection can die without either side noticing
// (a NAT entry expired, a firewall dropped it, the API server's host vanished): the stream then
// looks open and delivers nothing, forever. The API server sends bookmarks on a healthy watch,
// so silence longer than a few bookmark intervals means the stream is dead, and the informer
// starts a new one. Every event, bookmarks included, resets the switch.

export class Watchdog {
  private timer: NodeJS.Timeout | undefined;
  private lastActivity = 0;

  constructor(
    private readonly silenceMs: number,
    private readonly onSilence: () => void,
  ) {}

  /** Arms the switch, or re-arms it: something arrived. */
  kick(): void {
    this.lastActivity = performance.now();
    // One timer that re-checks on expiry, rather than a new timer per event: a relist can
    // deliver thousands of events in a burst.
    if (this.timer === undefined) this.arm(this.silenceMs);
  }

  stop(): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
  }

  private arm(ms: number): void {
    this.timer = setTimeout(() => {
      this.timer = undefined;
      const silent = performance.now() - this.lastActivity;
      if (silent >= this.silenceMs - 1) this.onSilence();
      else this.arm(this.silenceMs - silent);
    }, ms);
  }
}
