// The vmsnap controller against the machine's real libvirtd (qemu:///system), for end-to-end
// tests with real QEMU guests: the shared control plane and Ceph cluster, one controller process
// for a node of its own, shared by every e2e test file of the run (starting one costs seconds
// that the e2e time budget does not have twice), and what a test does with VMSnapshots through
// kubectl: apply, read, wait for the end, record the phases a watch shows.
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { onTeardown } from "../teardown.ts";
import { getCephCluster, type CephCluster } from "../ceph/cluster.ts";
import { getControlPlane, type ControlPlane } from "../kube/control-plane.ts";
import { startController, type ControllerProcess } from "../controller/process.ts";
import { SYSTEM_URI, useLibvirtd } from "../libvirt/libvirtd.ts";
import { vmsnapshotsIn, type VMSnapshots } from "../kube/vmsnapshots.ts";

export type { SnapshotSpec } from "../kube/vmsnapshots.ts";
export { conditionOf } from "../kube/vmsnapshots.ts";

export interface E2eController extends VMSnapshots {
  readonly cp: ControlPlane;
  readonly ceph: CephCluster;
  readonly namespace: string;
  readonly nodeName: string;
  readonly controller: ControllerProcess;
  /** SIGKILLs the controller and starts another for the same node (a crash and its successor). */
  killAndRestart(): Promise<ControllerProcess>;
}

let shared: Promise<E2eController> | undefined;

/** The run's controller on the real libvirtd, started on first use (stopped by the teardown). */
export function useE2eController(): Promise<E2eController> {
  shared ??= start();
  return shared;
}

async function start(): Promise<E2eController> {
  const [cp, ceph] = await Promise.all([getControlPlane(), getCephCluster(), useLibvirtd()]);
  const namespace = await cp.newNamespace("e2e");
  const nodeName = `hv-e2e-${randomBytes(3).toString("hex")}`;
  // As deployed (a hostPath): the memory folder outlives each controller process, so the one
  // after a crash finds the images its predecessor started (a live one QEMU is still writing).
  const memoryDir = mkdtempSync(join(tmpdir(), "vmsnap-e2e-memory-"));
  onTeardown(() => rmSync(memoryDir, { recursive: true, force: true }));
  const options = {
    memoryDir,
    kubeconfig: cp.kubeconfigPath,
    nodeName,
    namespace,
    libvirtUri: SYSTEM_URI,
    ceph: { confPath: ceph.confPath, clientId: ceph.clientId, keyringPath: ceph.keyringPath },
  };
  let controller = await startController(options);
  const e2e: E2eController = {
    ...vmsnapshotsIn({ cp, namespace, nodeName, controllerLog: () => controller.log() }),
    cp,
    ceph,
    namespace,
    nodeName,
    get controller() {
      return controller;
    },
    async killAndRestart() {
      await controller.stop("SIGKILL");
      controller = await startController(options);
      return controller;
    },
  };
  return e2e;
}
