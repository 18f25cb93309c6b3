// libvirt secrets holding cephx keys, so RBD disks in a domain can authenticate
// (`<auth username=...><secret type='ceph' uuid=.../></auth>`). Usage names carry the test
// process's pid, like domain names, so a run removes its own secrets and those of dead runs only.
import { randomUUID } from "node:crypto";
import { virsh } from "./virsh.ts";
import { isAlive } from "../processes.ts";
import { DOMAIN_PREFIX, ownerPidOf, withPrivateFile } from "./domains.ts";

export interface CephSecret {
  readonly uuid: string;
  /** The secret's usage name, `vmsnap-e2e-<pid>-...`. */
  readonly usage: string;
}

let counter = 0;

/** Defines a private ceph secret whose value is `key` (a cephx key, already base64). */
export async function defineCephSecret(key: string, label = "ceph"): Promise<CephSecret> {
  const uuid = randomUUID();
  const usage = `${DOMAIN_PREFIX}${process.pid}-${++counter}-${label}`;
  const xml =
    `<secret ephemeral='no' private='yes'><uuid>${uuid}</uuid>` +
    `<usage type='ceph'><name>${usage}</name></usage></secret>`;
  await withPrivateFile(xml, (path) => virsh(["secret-define", path]));
  // The key travels in a 0600 file, not on a command line other processes could read.
  await withPrivateFile(key, (path) => virsh(["secret-set-value", uuid, "--file", path]));
  return { uuid, usage };
}

export async function undefineSecret(uuid: string): Promise<void> {
  await virsh(["secret-undefine", uuid]);
}

/** Removes secrets of this process and of dead test processes; returns their uuids. */
export async function cleanupSecrets(): Promise<string[]> {
  const removed: string[] = [];
  // Rows look like: "<uuid>  ceph vmsnap-e2e-123-1-ceph".
  for (const line of (await virsh(["secret-list"])).split("\n")) {
    const [uuid, , usage] = line.trim().split(/\s+/);
    if (!uuid || !usage) continue;
    const owner = ownerPidOf(usage);
    if (owner === undefined || (owner !== process.pid && isAlive(owner))) continue;
    await undefineSecret(uuid);
    removed.push(uuid);
  }
  return removed;
}
