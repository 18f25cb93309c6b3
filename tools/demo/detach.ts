// Ctrl-C in a terminal signals the whole foreground process group: make, the demo, and every
// kubectl, virsh or rbd it is running at that instant, which would then fail mid-step, clean-up
// included. So the demo runs in a session of its own (no controlling terminal, so the terminal
// never signals it or its tools), and this small parent, the one left in the terminal's process
// group, hands each signal on to it, once, and exits with its exit code.
import { spawn } from "node:child_process";
import { constants } from "node:os";

const MARK = "VMSNAP_DEMO_DETACHED";
const RELAYED: readonly NodeJS.Signals[] = ["SIGINT", "SIGTERM", "SIGHUP"];

/** True in the detached demo itself; false in the parent that started it. */
export function isDetached(): boolean {
  return process.env[MARK] === "1";
}

/** Runs this same script detached, relaying signals; resolves with its exit code. */
export function runDetached(script: string, args: readonly string[]): Promise<number> {
  const child = spawn(process.execPath, [...process.execArgv, script, ...args], {
    stdio: "inherit", // the demo still reads Enter from the terminal and prints to it
    detached: true,
    env: { ...process.env, [MARK]: "1" },
  });
  for (const name of RELAYED) {
    process.on(name, () => {
      if (child.exitCode === null && child.pid !== undefined) child.kill(name);
    });
  }
  return new Promise((resolve, reject) => {
    child.once("error", reject);
    child.once("exit", (code, signal) =>
      resolve(code ?? (signal ? 128 + constants.signals[signal] : 1)),
    );
  });
}
