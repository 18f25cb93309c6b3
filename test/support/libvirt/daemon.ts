// The one real libvirtd of this machine, shared by every test run on it. Started by pid file
// through processes.ts (never found or stopped by name); reused when a vmsnap run already started
// it; left strictly alone when somebody else's daemon answers instead. Stopped by the last run
// that holds a lease on it (test/support/libvirt/lock.ts), after that run removed its own domains.
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { logTail, runningPid, startDaemon, stopLeftover } from "../processes.ts";
import { dropLease, otherLeaseHolders, takeLease, withLock } from "./lock.ts";
import { prepareHost, writeDaemonConfig } from "./host.ts";
import { LIBVIRT_PACKAGES, ensurePackages } from "./apt.ts";
import { SYSTEM_URI, virsh } from "./virsh.ts";

/** Fixed, because libvirtd's own paths are fixed: one daemon per machine. */
export const LIBVIRTD_RUN_DIR = "/run/vmsnap/libvirtd";
const DAEMON = "libvirtd";
const BINARY = "/usr/sbin/libvirtd";

export interface LibvirtDaemon {
  /** Connection URI for virsh and the product's binding. */
  readonly uri: string;
  /** Pid of the daemon when a vmsnap run started it; undefined for a foreign daemon we only use. */
  readonly pid: number | undefined;
  /** Whether this process started it (it may still be stopped by another run's teardown). */
  readonly startedHere: boolean;
  /** libvirtd's stderr log (only for a daemon a vmsnap run started). */
  readonly logFile: string;
}

/** True when the system daemon answers with a loaded QEMU driver. */
export async function daemonAnswers(timeoutMs = 5_000): Promise<boolean> {
  try {
    return /QEMU/.test(await virsh(["version"], { timeoutMs }));
  } catch {
    return false;
  }
}

/** Makes sure a libvirtd answers on qemu:///system and this process holds a lease on it. */
export async function acquireDaemon(): Promise<LibvirtDaemon> {
  await ensurePackages(LIBVIRT_PACKAGES);
  await prepareHost();
  mkdirSync(LIBVIRTD_RUN_DIR, { recursive: true });
  const logFile = join(LIBVIRTD_RUN_DIR, `${DAEMON}.log`);
  return withLock(LIBVIRTD_RUN_DIR, async () => {
    takeLease(LIBVIRTD_RUN_DIR);
    const existing = runningPid(LIBVIRTD_RUN_DIR, DAEMON);
    if (existing !== undefined) {
      await waitUntilAnswering(existing, logFile, 30_000);
      return { uri: SYSTEM_URI, pid: existing, startedHere: false, logFile };
    }
    if (await daemonAnswers()) {
      // Somebody else's daemon (not in our pid file): use it, never signal it.
      return { uri: SYSTEM_URI, pid: undefined, startedHere: false, logFile };
    }
    const config = join(LIBVIRTD_RUN_DIR, "libvirtd.conf");
    writeDaemonConfig(config);
    const daemon = await startDaemon(DAEMON, BINARY, ["--config", config], {
      runDir: LIBVIRTD_RUN_DIR,
    });
    await waitUntilAnswering(daemon.pid, logFile, 60_000);
    return { uri: SYSTEM_URI, pid: daemon.pid, startedHere: true, logFile };
  });
}

/**
 * Drops this process's lease; when no other run holds one, stops the daemon a vmsnap run
 * started (by its pid file). A foreign daemon is never stopped. `VMSNAP_KEEP_LIBVIRTD=1` keeps it
 * running for debugging.
 */
export async function releaseDaemon(): Promise<void> {
  await withLock(LIBVIRTD_RUN_DIR, async () => {
    dropLease(LIBVIRTD_RUN_DIR);
    if (process.env.VMSNAP_KEEP_LIBVIRTD === "1") return;
    if (otherLeaseHolders(LIBVIRTD_RUN_DIR).length > 0) return;
    await stopLeftover(LIBVIRTD_RUN_DIR, DAEMON);
  });
}

async function waitUntilAnswering(pid: number, logFile: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await daemonAnswers()) return;
    if (runningPid(LIBVIRTD_RUN_DIR, DAEMON) !== pid) {
      throw new Error(
        `libvirtd (pid ${pid}) exited before answering; its log ends:\n${logTail(logFile, 20)}`,
      );
    }
    await sleep(200);
  }
  throw new Error(
    `libvirtd (pid ${pid}) did not answer within ${timeoutMs} ms; its log ends:\n${logTail(logFile, 20)}`,
  );
}
