// An RBD image the tiny guest can mount: filled with an empty ext4 filesystem made on the host
// (the guest has no mkfs.ext4 and the host has no krbd), plus what the domain XML needs to open
// it: the monitor address, the cephx user, and a libvirt secret holding that user's key.
// Takes the cluster as a parameter (test/support/ceph/cluster.ts owns its lifecycle).
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { CephCluster } from "../ceph/cluster.ts";
import { defineCephSecret } from "../libvirt/secrets.ts";
import { createExt4Raw } from "./disk.ts";
import type { RbdDiskSpec } from "./domain-xml.ts";

/** The parts of a cluster this needs, so any cluster handle with them will do. */
export type CephForGuest = Pick<
  CephCluster,
  "confPath" | "keyringPath" | "clientId" | "pool" | "rbd"
>;

export interface RbdGuestDiskOptions {
  /** Image name; default a unique one. */
  image?: string;
  pool?: string;
  sizeMiB?: number;
}

let counter = 0;

/**
 * The msgr v1 address from the conf's `mon_host = [v2:ip:port,v1:ip:port]`. libvirt hands QEMU a
 * bare `host:port`, which librados reads as v1 unless the port is 3300, so v1 is the one to give.
 */
export function monitorFromConf(conf: string): { host: string; port: number } {
  const line = /^\s*mon_host\s*=\s*(.+)$/m.exec(conf)?.[1];
  if (!line) throw new Error("ceph.conf has no mon_host");
  const v1 = /v1:([\d.]+):(\d+)/.exec(line) ?? /^\s*\[?([\d.]+):(\d+)/.exec(line);
  if (!v1) throw new Error(`no v1 monitor address in mon_host = ${line}`);
  return { host: v1[1]!, port: Number(v1[2]) };
}

/** The base64 cephx key from a keyring file (`key = AQ...`). */
export function keyFromKeyring(keyring: string): string {
  const key = /^\s*key\s*=\s*(\S+)/m.exec(keyring)?.[1];
  if (!key) throw new Error("keyring holds no key");
  return key;
}

/** Creates the image with ext4 inside and returns the disk for `launchGuest({ rbdDisks })`. */
export async function createRbdGuestDisk(
  cluster: CephForGuest,
  options: RbdGuestDiskOptions = {},
): Promise<Omit<RbdDiskSpec, "kind" | "target">> {
  const pool = options.pool ?? cluster.pool;
  const image = options.image ?? `guest-${process.pid}-${++counter}`;
  const dir = mkdtempSync(join(tmpdir(), "vmsnap-rbd-"));
  try {
    const raw = join(dir, "disk.raw");
    await createExt4Raw(raw, options.sizeMiB ?? 64, "rbd");
    const imported = await cluster.rbd(["import", "--no-progress", raw, `${pool}/${image}`], {
      timeoutMs: 120_000,
    });
    if (imported.code !== 0)
      throw new Error(`rbd import exited ${imported.code}: ${imported.stderr}`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  const secret = await defineCephSecret(keyFromKeyring(readFileSync(cluster.keyringPath, "utf8")));
  return {
    pool,
    image,
    monitors: [monitorFromConf(readFileSync(cluster.confPath, "utf8"))],
    auth: { username: cluster.clientId, secretUuid: secret.uuid },
  };
}
