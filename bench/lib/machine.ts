// What the machine was doing while a benchmark ran. This machine has 2 cores shared with other
// work, so every result records the load average: sampled every few seconds for the whole run,
// not only at its ends, so a busy spell in the middle shows too.
import { readFileSync } from "node:fs";
import { cpus } from "node:os";

export interface LoadRecord {
  /** 1-minute load average when the run started and ended. */
  readonly start: number;
  readonly end: number;
  /** Mean and maximum of the 1-minute load average sampled during the run. */
  readonly mean: number;
  readonly max: number;
  readonly samples: number;
}

export interface MachineRecord {
  readonly cpus: number;
  readonly cpuModel: string;
  readonly node: string;
  readonly load: LoadRecord;
}

export function loadAverage1m(): number {
  return Number(readFileSync("/proc/loadavg", "utf8").split(" ")[0]);
}

/** Samples the 1-minute load average every `intervalMs` until `stop()`. */
export class LoadSampler {
  private readonly values: number[] = [loadAverage1m()];
  private readonly timer: NodeJS.Timeout;

  constructor(intervalMs = 5_000) {
    this.timer = setInterval(() => this.values.push(loadAverage1m()), intervalMs);
    this.timer.unref();
  }

  stop(): LoadRecord {
    clearInterval(this.timer);
    this.values.push(loadAverage1m());
    const v = this.values;
    return {
      start: v[0]!,
      end: v.at(-1)!,
      mean: Math.round((v.reduce((a, b) => a + b, 0) / v.length) * 100) / 100,
      max: Math.max(...v),
      samples: v.length,
    };
  }
}

export function machineRecord(load: LoadRecord): MachineRecord {
  return {
    cpus: cpus().length,
    cpuModel: cpus()[0]?.model ?? "unknown",
    node: process.version,
    load,
  };
}

/** "load 3.1 (2.4–4.0)": what a table cell shows. */
export function formatLoad(load: LoadRecord): string {
  return `${load.mean} (${load.start}→${load.end}, max ${load.max})`;
}
