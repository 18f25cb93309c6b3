// Domains on the shared libvirtd, named so every test run can find (and only find) its own:
// `vmsnap-e2e-<pid>-<n>-<label>`. The pid is the test process, so a later run can also tell the
// leftovers of a crashed run (pid gone) from the live domains of a concurrent one.
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { VirshError, virsh } from "./virsh.ts";
import { isAlive } from "../processes.ts";

export const DOMAIN_PREFIX = "vmsnap-e2e-";
let counter = 0;

/** A domain name unique on this machine and owned by this process; `label` says what it is for. */
export function uniqueDomainName(label = "vm"): string {
  const safe = label.replace(/[^A-Za-z0-9_.-]/g, "-").slice(0, 40);
  return `${DOMAIN_PREFIX}${process.pid}-${++counter}-${safe}`;
}

/** The pid encoded in one of our domain names, if it is one. */
export function ownerPidOf(name: string): number | undefined {
  const match = new RegExp(`^${DOMAIN_PREFIX}(\\d+)-`).exec(name);
  return match ? Number(match[1]) : undefined;
}

/** Hands `content` to `fn` as a temporary file only root can read, removed afterwards. */
export async function withPrivateFile<T>(
  content: string,
  fn: (path: string) => Promise<T>,
): Promise<T> {
  const dir = mkdtempSync(join(tmpdir(), "vmsnap-virsh-"));
  const path = join(dir, "input");
  writeFileSync(path, content, { mode: 0o600 });
  try {
    return await fn(path);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Defines a persistent domain from XML (the name is the one inside the XML). */
export async function defineDomain(xml: string): Promise<void> {
  await withPrivateFile(xml, (path) => virsh(["define", path]));
}

export async function startDomain(name: string): Promise<void> {
  await virsh(["start", name]);
}

/** Defines and starts; on a failed start the definition is removed again. */
export async function createDomain(name: string, xml: string): Promise<void> {
  await defineDomain(xml);
  try {
    await startDomain(name);
  } catch (err) {
    await undefineDomain(name);
    throw err;
  }
}

/** Powers the domain off at once; a domain that is not running or not there is fine. */
export async function destroyDomain(name: string): Promise<void> {
  try {
    await virsh(["destroy", name], { timeoutMs: 30_000 });
  } catch (err) {
    if (!isGone(err, [42, 55])) throw err;
  }
}

/** Removes the definition and libvirt's snapshot/checkpoint metadata; a missing domain is fine. */
export async function undefineDomain(name: string): Promise<void> {
  try {
    await virsh(["undefine", name, "--snapshots-metadata", "--checkpoints-metadata"]);
  } catch (err) {
    if (!isGone(err, [42])) throw err;
  }
}

/** destroy + undefine. */
export async function removeDomain(name: string): Promise<void> {
  await destroyDomain(name);
  await undefineDomain(name);
}

/** `virsh domstate`: running, paused, shut off, ... */
export async function domainState(name: string): Promise<string> {
  return (await virsh(["domstate", name])).trim();
}

/** Names of all domains, running or not. */
export async function listDomains(): Promise<string[]> {
  const out = await virsh(["list", "--all", "--name"]);
  return out
    .split("\n")
    .map((l) => l.trim())
    .filter((l) => l !== "");
}

/**
 * Removes this process's domains, plus those left by test processes that no longer exist.
 * Domains of other live runs and any domain not named by us are never touched.
 */
export async function cleanupDomains(): Promise<string[]> {
  const removed: string[] = [];
  for (const name of await listDomains()) {
    const owner = ownerPidOf(name);
    if (owner === undefined) continue;
    if (owner !== process.pid && isAlive(owner)) continue;
    await removeDomain(name);
    removed.push(name);
  }
  return removed;
}

function isGone(err: unknown, codes: readonly number[]): boolean {
  return err instanceof VirshError && codes.includes(err.libvirtCode ?? -1);
}
