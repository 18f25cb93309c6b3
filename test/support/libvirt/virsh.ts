// Running `virsh` for the test harness: always an argument array (never a shell string), always
// a deadline, and failures as a typed error that keeps virsh's stderr.
//
// virsh prints libvirt's message but not its numeric error code. The harness still wants to say
// "this failed with code 74", so `libvirtCodeOf` maps the fixed category prefix that libvirt puts
// in front of every message (virerror.c's templates, e.g. "argument unsupported: ...") back to the
// code. That is test-side convenience only: the product classifies errors by the code its binding
// receives, never by text.
import { execFile } from "node:child_process";

export const SYSTEM_URI = "qemu:///system";

/** Thrown when virsh exits non-zero or runs past its deadline. */
export class VirshError extends Error {
  constructor(
    readonly args: readonly string[],
    readonly exitCode: number | null,
    readonly stderr: string,
    readonly timedOut: boolean,
  ) {
    super(
      `virsh ${args.join(" ")} ${timedOut ? "timed out" : `exited ${exitCode}`}: ${stderr.trim()}`,
    );
    this.name = "VirshError";
  }

  /** The libvirt error code behind the message, when its category is one we know (see module header). */
  get libvirtCode(): number | undefined {
    return libvirtCodeOf(this.stderr);
  }
}

export interface VirshOptions {
  /** Deadline for the whole virsh process; it is killed when it passes. Default 60 s. */
  timeoutMs?: number;
  /** Connection URI; default the shared system daemon. */
  uri?: string;
  /** virsh -q (default): no "Domain defined"-style chatter; off for commands whose chatter is the answer. */
  quiet?: boolean;
}

/** Runs `virsh -c <uri> ...args` and resolves with its stdout. */
export function virsh(args: readonly string[], options: VirshOptions = {}): Promise<string> {
  const full = [
    "-c",
    options.uri ?? SYSTEM_URI,
    ...(options.quiet === false ? [] : ["-q"]),
    ...args,
  ];
  return new Promise((resolve, reject) => {
    execFile(
      "virsh",
      full,
      { timeout: options.timeoutMs ?? 60_000, killSignal: "SIGKILL", maxBuffer: 16 * 1024 * 1024 },
      (err, stdout, stderr) => {
        if (!err) return resolve(stdout);
        const timedOut = err.killed === true && err.signal === "SIGKILL";
        const code = typeof err.code === "number" ? err.code : null;
        reject(new VirshError(args, code, stderr || err.message, timedOut));
      },
    );
  });
}

// Message categories from libvirt's virerror.c, paired with the codes in virterror.h.
const CATEGORIES: ReadonlyArray<readonly [string, number]> = [
  ["internal error", 1],
  ["this function is not supported by the connection driver", 3],
  ["invalid argument", 8],
  ["operation failed", 9],
  ["Domain not found", 42],
  ["Requested operation is not valid", 55],
  ["Secret not found", 66],
  ["unsupported configuration", 67],
  ["Timed out during operation", 68],
  ["Domain snapshot not found", 72],
  ["argument unsupported", 74],
  ["operation aborted", 78],
  ["Operation not supported", 84],
  ["Guest agent is not responding", 86],
  ["guest agent replied with wrong id to guest-sync command", 97],
];

/** Maps virsh's `error: <category>: detail` line to the libvirt error code, if known. */
export function libvirtCodeOf(stderr: string): number | undefined {
  for (const line of stderr.split("\n")) {
    const message = line.replace(/^error:\s*/, "");
    if (message === line) continue;
    for (const [category, code] of CATEGORIES) {
      if (message === category || message.startsWith(`${category}:`)) return code;
    }
  }
  return undefined;
}
