// A file the guard logs into, for tests. A file descriptor, not a pipe: the guard keeps
// writing after the process that started it is gone, and the test still reads every line.
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

export interface GuardLogRecord {
  readonly time: string;
  readonly level: string;
  readonly msg: string;
  readonly [field: string]: unknown;
}

export class GuardLog {
  readonly path: string;
  /** Hand this to ThawGuard's `stderr`, or to a child process's stdio. */
  readonly fd: number;
  private readonly dir: string;

  constructor() {
    this.dir = mkdtempSync(join(tmpdir(), "vmsnap-guard-log-"));
    this.path = join(this.dir, "guard.log");
    this.fd = openSync(this.path, "a");
  }

  /** Every JSON record so far (other lines, e.g. a child's own output, are skipped). */
  records(): GuardLogRecord[] {
    return readFileSync(this.path, "utf8")
      .split("\n")
      .filter((line) => line.startsWith("{"))
      .map((line) => JSON.parse(line) as GuardLogRecord);
  }

  /** The `msg` records, optionally only those matching `fields`. */
  find(msg: string, fields: Readonly<Record<string, unknown>> = {}): GuardLogRecord[] {
    return this.records().filter(
      (r) => r.msg === msg && Object.entries(fields).every(([k, v]) => r[k] === v),
    );
  }

  /** The whole log, for assertion messages. */
  text(): string {
    return readFileSync(this.path, "utf8");
  }

  dispose(): void {
    closeSync(this.fd);
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** Whether `pid` has exited (gone, or a zombie nobody reaped yet). */
export function hasExited(pid: number): boolean {
  try {
    return / Z /.test(readFileSync(`/proc/${pid}/stat`, "utf8"));
  } catch {
    return true;
  }
}
