// Reading the guest's serial console log (written by QEMU on the host): waiting for the lines
// /init prints, and parsing the writers' records so a test can see sequence gaps and stalls.
import { readFileSync } from "node:fs";
import { setTimeout as sleep } from "node:timers/promises";

/** One line of a disk writer: `vmsnap-writer <disk> seq=<n> t=<uptime> w=<uptime>`. */
export interface WriterRecord {
  readonly disk: string;
  readonly seq: number;
  /** Guest uptime (s) when the append started. */
  readonly t: number;
  /** Guest uptime (s) when the line was fsync'd; w - t is how long the write was blocked. */
  readonly w: number;
}

/** The console so far ("" before QEMU created the file). */
export function readConsole(path: string): string {
  try {
    return readFileSync(path, "utf8").replace(/\r/g, "");
  } catch {
    return "";
  }
}

const WRITER_LINE = /^vmsnap-writer (\S+) seq=(\d+) t=([\d.]+) w=([\d.]+)$/;
const FILE_LINE = /^vmsnap-writer (\S+) seq=(\d+) t=([\d.]+)$/;

/** Every complete writer record in `text`, optionally of one disk, in console order. */
export function writerRecords(text: string, disk?: string): WriterRecord[] {
  const records: WriterRecord[] = [];
  for (const line of text.split("\n")) {
    const m = WRITER_LINE.exec(line.trim());
    if (!m || (disk !== undefined && m[1] !== disk)) continue;
    records.push({ disk: m[1]!, seq: Number(m[2]), t: Number(m[3]), w: Number(m[4]) });
  }
  return records;
}

/** A line of the writer's file on the guest disk: the console record without `w`. */
export type WriterFileRecord = Omit<WriterRecord, "w">;

/** Every record in the writer's file (`/mnt/<disk>/vmsnap-writer.log`), in file order. */
export function writerFileRecords(text: string): WriterFileRecord[] {
  const records: WriterFileRecord[] = [];
  for (const line of text.split("\n")) {
    const m = FILE_LINE.exec(line.trim());
    if (m) records.push({ disk: m[1]!, seq: Number(m[2]), t: Number(m[3]) });
  }
  return records;
}

/** One call of the fsfreeze hook: `vmsnap-hook: <action> mode=<mode> up=<uptime>`. */
export interface HookCall {
  readonly action: "freeze" | "thaw";
  readonly mode: string;
  /** Guest uptime (s): just before FIFREEZE on "freeze", just after FITHAW on "thaw". */
  readonly up: number;
  /** Its line's index in the console text split on "\n". */
  readonly line: number;
}

const HOOK_LINE = /^vmsnap-hook: (freeze|thaw) mode=(\S+) up=([\d.]+)$/;

/** Every fsfreeze hook call in `text`, in console order. */
export function hookCalls(text: string): HookCall[] {
  const calls: HookCall[] = [];
  text.split("\n").forEach((line, index) => {
    const m = HOOK_LINE.exec(line.trim());
    if (m) {
      const action = m[1] as HookCall["action"];
      calls.push({ action, mode: m[2]!, up: Number(m[3]), line: index });
    }
  });
  return calls;
}

/** Sequence numbers missing between the first and last record (each record once, in order). */
export function sequenceGaps(records: readonly WriterFileRecord[]): number[] {
  const missing: number[] = [];
  for (let i = 1; i < records.length; i++) {
    for (let s = records[i - 1]!.seq + 1; s < records[i]!.seq; s++) missing.push(s);
  }
  return missing;
}

/** Waits until the console matches `pattern`; returns the match. Fails fast on a kernel panic. */
export async function waitForConsole(
  path: string,
  pattern: RegExp,
  timeoutMs: number,
): Promise<RegExpMatchArray> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const text = readConsole(path);
    const match = text.match(pattern);
    if (match) return match;
    if (/Kernel panic/.test(text)) throw new Error(`guest kernel panicked:\n${text.slice(-2000)}`);
    if (Date.now() > deadline) {
      throw new Error(
        `console did not show ${pattern} within ${timeoutMs} ms; it ends:\n${text.slice(-2000)}`,
      );
    }
    await sleep(100);
  }
}
