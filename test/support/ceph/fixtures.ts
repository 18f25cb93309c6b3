// Small helpers for tests and benchmarks against the real cluster: images with data, checksums
// and counters read back through `rbd export`, a backend configured for the cluster, and the
// Disk records the inventory would produce for RBD disks.
import { createHash, randomBytes } from "node:crypto";
import type { Disk } from "../../../src/hypervisor/disk.ts";
import type { RbdConfig } from "../../../src/storage/rbd/config.ts";
import type { CephCluster } from "./cluster.ts";
import type { BinaryCliResult } from "./cli.ts";

let counter = 0;

/** A name unique within this run and across concurrent runs (pid), safe for every name kind. */
export function uniqueName(prefix: string): string {
  counter += 1;
  return `${prefix}-${process.pid}-${counter}-${randomBytes(2).toString("hex")}`;
}

/** The backend configuration for the cluster's test client. */
export function rbdConfigFor(cluster: CephCluster, overrides: Partial<RbdConfig> = {}): RbdConfig {
  return {
    confPath: cluster.confPath,
    clientId: cluster.clientId,
    keyringPath: cluster.keyringPath,
    ...overrides,
  };
}

/** A Disk as the domain-XML inventory reports an RBD disk. */
export function rbdDisk(target: string, pool: string, image: string, namespace?: string): Disk {
  return {
    target,
    device: "disk",
    type: "network",
    readonly: false,
    shareable: false,
    plan: {
      backend: "rbd",
      rbd: { pool, image, monitors: [{ host: "127.0.0.1" }], ...(namespace ? { namespace } : {}) },
    },
  };
}

export function ok(result: BinaryCliResult, what: string): BinaryCliResult {
  if (result.code !== 0) throw new Error(`${what}: exit ${result.code}: ${result.stderr.trim()}`);
  return result;
}

/** Creates an image of `bytes` random bytes (rbd import from stdin). */
export async function createImageWithData(
  cluster: CephCluster,
  spec: string,
  bytes = 1024 * 1024,
): Promise<void> {
  ok(
    await cluster.rbd(["import", "--no-progress", "-", spec], { input: randomBytes(bytes) }),
    `rbd import ${spec}`,
  );
}

/** Creates an empty image. */
export async function createImage(cluster: CephCluster, spec: string, size = "1M"): Promise<void> {
  ok(await cluster.rbd(["create", "--size", size, spec]), `rbd create ${spec}`);
}

/** Overwrites the whole image with fresh data (rbd bench random writes, random content). */
export async function overwrite(
  cluster: CephCluster,
  spec: string,
  totalBytes = "2M",
): Promise<void> {
  const args = [
    "bench",
    "--io-type",
    "write",
    "--io-pattern",
    "rand",
    "--io-size",
    "64K",
    "--io-total",
    totalBytes,
    spec,
  ];
  ok(await cluster.rbd(args), `rbd bench ${spec}`);
}

/** The image's (or `image@snap`'s) full content. */
export async function exportBytes(cluster: CephCluster, spec: string): Promise<Buffer> {
  return ok(
    await cluster.rbd(["export", "--no-progress", spec, "-"], { binary: true }),
    `rbd export ${spec}`,
  ).stdoutBytes;
}

export async function checksum(cluster: CephCluster, spec: string): Promise<string> {
  return createHash("sha256")
    .update(await exportBytes(cluster, spec))
    .digest("hex");
}

/** The decimal counter the lock-step writer keeps at offset 0. */
export async function readCounter(cluster: CephCluster, spec: string): Promise<number> {
  const head = (await exportBytes(cluster, spec)).subarray(0, 20);
  if (head.every((b) => b === 0)) return 0; // never written
  const text = head.toString("latin1");
  if (!/^\d{20}$/.test(text))
    throw new Error(`${spec}: no counter at offset 0: ${JSON.stringify(text)}`);
  return Number(text);
}

/** Removes an image with all its snapshots, whatever state a failed test left it in. */
export async function purgeImage(cluster: CephCluster, spec: string): Promise<void> {
  await cluster.rbd(["snap", "purge", "--no-progress", spec]);
  await cluster.rbd(["rm", "--no-progress", spec]);
}
