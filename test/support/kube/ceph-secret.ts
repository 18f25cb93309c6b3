// The agent's Ceph identity, as deploy/README.md has users create it: Secret `vmsnap-ceph` in
// the agent's namespace, from the cluster's ceph.conf and the client's keyring.
import type { CephCluster } from "../ceph/cluster.ts";
import type { ControlPlane } from "./control-plane.ts";

export const CEPH_SECRET = "vmsnap-ceph";

/** Creates (or replaces) the Secret with `kubectl create secret generic --from-file`. */
export async function createCephSecret(
  cp: ControlPlane,
  ceph: CephCluster,
  namespace: string,
): Promise<void> {
  await cp.kubectl(["-n", namespace, "delete", "secret", CEPH_SECRET, "--ignore-not-found"]);
  const created = await cp.kubectl([
    "-n",
    namespace,
    "create",
    "secret",
    "generic",
    CEPH_SECRET,
    `--from-file=ceph.conf=${ceph.confPath}`,
    `--from-file=keyring=${ceph.keyringPath}`,
  ]);
  if (created.code !== 0) throw new Error(`creating Secret ${CEPH_SECRET}: ${created.stderr}`);
}
