// What an RBD image holds, for tests that restore one: a digest of its whole content (as
// `rbd export` reads it), and a way to change it from outside a guest.
import { createHash } from "node:crypto";
import type { CephCluster } from "./cluster.ts";

/** sha256 of the image's content, in the cluster's pool. */
export async function imageDigest(ceph: CephCluster, image: string): Promise<string> {
  const r = await ceph.rbd(["export", `${ceph.pool}/${image}`, "-"]);
  if (r.code !== 0) throw new Error(`rbd export ${image}: ${r.stderr}`);
  return createHash("sha256").update(r.stdout).digest("hex");
}

/** Writes `kib` KiB of random 4 KiB blocks at random places of the image. */
export async function scribble(ceph: CephCluster, image: string, kib = 256): Promise<void> {
  const r = await ceph.rbd([
    "bench",
    "--io-type",
    "write",
    "--io-size",
    "4K",
    "--io-total",
    `${kib}K`,
    "--io-pattern",
    "rand",
    `${ceph.pool}/${image}`,
  ]);
  if (r.code !== 0) throw new Error(`rbd bench ${image}: ${r.stderr}`);
}
