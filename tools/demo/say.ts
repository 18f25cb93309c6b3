// The demo's voice: every line it prints goes through here, so the whole transcript has one
// shape — section headings, timestamped event lines, indented details — and reads well when
// pasted into the README.

const started = Date.now();

/** Wall-clock time of day with milliseconds, e.g. 14:52:03.412. */
export function clock(at = Date.now()): string {
  return new Date(at).toISOString().slice(11, 23);
}

/** Seconds with one decimal, e.g. "4.2 s". */
export function seconds(ms: number): string {
  return `${(ms / 1000).toFixed(1)} s`;
}

/** A byte count in MiB, e.g. "12.4 MiB". */
export function mib(bytes: number): string {
  return `${(bytes / 1024 / 1024).toFixed(1)} MiB`;
}

export function line(text = ""): void {
  process.stdout.write(`${text}\n`);
}

export function heading(text: string): void {
  line();
  line(`==> ${text}`);
}

/** An indented block, e.g. a manifest or a command's output. */
export function block(text: string, indent = "    "): void {
  for (const l of text.replace(/\n$/, "").split("\n")) line(`${indent}${l}`);
}

/** A timestamped line: `14:52:03.412  text`. */
export function event(text: string, at = Date.now()): void {
  line(`  ${clock(at)}  ${text}`);
}

/** Runs one bring-up step, printing what it produced and how long it took. */
export async function step<T>(what: string, fn: () => Promise<T>, describe?: (v: T) => string) {
  const t0 = Date.now();
  const value = await fn();
  const detail = describe ? `  ${describe(value)}` : "";
  event(`${what.padEnd(22)} ${seconds(Date.now() - t0).padStart(7)}${detail}`);
  return value;
}

/** Time since the demo started. */
export function elapsed(): number {
  return Date.now() - started;
}
