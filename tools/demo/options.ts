// How the demo was asked to run: interactive (wait for Enter before cleaning up, so the user can
// try kubectl against the live stack) or not. Non-interactive when asked to (`--yes`,
// VMSNAP_DEMO_NONINTERACTIVE=1) and whenever stdin is not a terminal, so CI and pipes never hang.

export interface DemoOptions {
  readonly interactive: boolean;
  /** Why the demo will not wait, for the one line that says so. */
  readonly why: string;
}

export const DEMO_USAGE = `usage: make demo [VMSNAP_DEMO_NONINTERACTIVE=1]
       node --import tsx tools/demo.ts [--yes]

Brings up a local control plane, Ceph, libvirtd and a real QEMU guest, starts the vmsnap
controller, takes a disk snapshot and a VM snapshot (with memory), prints the phases as they
happen, the final status and the metrics, then removes everything it started.

  --yes, -y    do not wait for Enter before cleaning up (also VMSNAP_DEMO_NONINTERACTIVE=1,
               and whenever stdin is not a terminal)
  --help, -h   this text`;

export class UsageError extends Error {}

/** Reads flags and environment; returns "help" for --help. */
export function parseDemoOptions(
  argv: readonly string[],
  env: NodeJS.ProcessEnv,
  stdinIsTty: boolean,
): DemoOptions | "help" {
  let yes = false;
  for (const arg of argv) {
    if (arg === "--help" || arg === "-h") return "help";
    if (arg === "--yes" || arg === "-y") yes = true;
    else throw new UsageError(`unknown argument ${arg}\n\n${DEMO_USAGE}`);
  }
  const fromEnv = env.VMSNAP_DEMO_NONINTERACTIVE;
  if (yes) return { interactive: false, why: "--yes" };
  if (fromEnv !== undefined && fromEnv !== "" && fromEnv !== "0") {
    return { interactive: false, why: "VMSNAP_DEMO_NONINTERACTIVE is set" };
  }
  if (!stdinIsTty) return { interactive: false, why: "stdin is not a terminal" };
  return { interactive: true, why: "" };
}
