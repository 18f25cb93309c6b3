// A machine-wide lock and lease register for the one shared libvirtd. libvirtd uses fixed paths
// (/run/libvirt, /var/lib/libvirt), so concurrent test runs on one machine must share a single
// daemon: the lock serialises starting and stopping it, and each run holds a lease while it uses
// it, so the last run out stops it and no run pulls the daemon from under another.
import { mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { isAlive } from "../processes.ts";

/** Runs `fn` holding `<dir>/lock` (a folder: mkdir is atomic); a lock left by a dead pid is broken. */
export async function withLock<T>(
  dir: string,
  fn: () => Promise<T>,
  timeoutMs = 120_000,
): Promise<T> {
  const lock = join(dir, "lock");
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      mkdirSync(lock);
      writeFileSync(join(lock, "owner"), `${process.pid}\n`);
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
      const owner = Number(readOwner(lock)) || 0;
      // The owner may not have written its pid yet (owner 0): then only an old lock is stale.
      const stale = owner > 0 ? !isAlive(owner) : ageMs(lock) > 10_000;
      if (stale) {
        rmSync(lock, { recursive: true, force: true });
        continue;
      }
      if (Date.now() > deadline)
        throw new Error(`timed out waiting for ${lock} (held by pid ${owner})`, { cause: err });
      await sleep(100);
    }
  }
  try {
    return await fn();
  } finally {
    rmSync(lock, { recursive: true, force: true });
  }
}

function ageMs(path: string): number {
  try {
    return Date.now() - statSync(path).mtimeMs;
  } catch {
    return 0;
  }
}

function readOwner(lock: string): string {
  try {
    return readFileSync(join(lock, "owner"), "utf8").trim();
  } catch {
    return "0";
  }
}

/** Records that this process uses the shared daemon. */
export function takeLease(dir: string): void {
  mkdirSync(join(dir, "leases"), { recursive: true });
  writeFileSync(join(dir, "leases", String(process.pid)), "");
}

/** Drops this process's lease. */
export function dropLease(dir: string): void {
  rmSync(join(dir, "leases", String(process.pid)), { force: true });
}

/** Pids of other live processes holding a lease; leases of dead processes are removed. */
export function otherLeaseHolders(dir: string): number[] {
  let names: string[];
  try {
    names = readdirSync(join(dir, "leases"));
  } catch {
    return [];
  }
  const live: number[] = [];
  for (const name of names) {
    const pid = Number(name);
    if (pid === process.pid) continue;
    if (Number.isInteger(pid) && isAlive(pid)) live.push(pid);
    else rmSync(join(dir, "leases", name), { force: true });
  }
  return live;
}
