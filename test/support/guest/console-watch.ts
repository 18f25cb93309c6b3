// The host's view of the guest's writer in real time: the guest's own clock stops while its
// vCPUs are paused (under TCG the guest TSC follows QEMU's virtual clock), so a pause is only
// visible from outside. This polls the console file every few ms and stamps each writer line
// with the host's monotonic clock when it appeared; the longest gap between two lines inside a
// window is the stall the writer saw (vCPU pause, freeze, or a guest slowed by write faults).
import { closeSync, fstatSync, openSync, readSync } from "node:fs";

export interface StampedLine {
  readonly seq: number;
  /** performance.now() of the poll that first saw the line. */
  readonly seenAt: number;
}

export interface WriterStall {
  /** Longest interval between two consecutive writer lines seen inside the window (ms). */
  readonly maxGapMs: number;
  /** Median interval between writer lines before the window: the writer's normal pace (ms). */
  readonly normalGapMs: number;
  /** Lines seen inside the window. */
  readonly lines: number;
}

const LINE = /^vmsnap-writer (\S+) seq=(\d+) t=[\d.]+ w=[\d.]+$/;

export class ConsoleWatch {
  private readonly fd: number;
  private offset = 0;
  private rest = "";
  private readonly timer: NodeJS.Timeout;
  readonly lines: StampedLine[] = [];

  constructor(
    path: string,
    private readonly disk = "vda",
    pollMs = 5,
  ) {
    this.fd = openSync(path, "r");
    // Only lines written from now on: older ones would all carry this first poll's stamp.
    this.offset = fstatSync(this.fd).size;
    this.timer = setInterval(() => this.poll(), pollMs);
  }

  /** Reads what was appended since the last poll. */
  poll(): void {
    const now = performance.now();
    const buf = Buffer.alloc(64 * 1024);
    for (;;) {
      const n = readSync(this.fd, buf, 0, buf.length, this.offset);
      if (n <= 0) break;
      this.offset += n;
      const text = this.rest + buf.toString("utf8", 0, n);
      const parts = text.split("\n");
      this.rest = parts.pop() ?? "";
      for (const raw of parts) {
        const m = LINE.exec(raw.replace(/\r/g, "").trim());
        if (m && m[1] === this.disk) this.lines.push({ seq: Number(m[2]), seenAt: now });
      }
    }
  }

  /** The writer's stall between `from` and `to` (performance.now() values), ±1 line around them. */
  stall(from: number, to: number): WriterStall {
    this.poll();
    const before = this.lines.filter((l) => l.seenAt < from);
    const gaps = (ls: readonly StampedLine[]) =>
      ls.slice(1).map((l, i) => l.seenAt - ls[i]!.seenAt);
    const normal = gaps(before.slice(-20)).sort((a, b) => a - b);
    // The line before the window and the first one after it bound the stall.
    const first = Math.max(0, before.length - 1);
    let last = this.lines.findIndex((l) => l.seenAt > to);
    if (last < 0) last = this.lines.length - 1;
    const inside = this.lines.slice(first, last + 1);
    return {
      maxGapMs: Math.round(Math.max(0, ...gaps(inside))),
      normalGapMs: Math.round(normal[Math.floor(normal.length / 2)] ?? 0),
      lines: inside.length,
    };
  }

  stop(): void {
    clearInterval(this.timer);
    closeSync(this.fd);
  }
}
