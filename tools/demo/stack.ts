// Brings up every real part the demo needs, timing each: the control plane (kube-apiserver +
// etcd with the CRD), a one-OSD Ceph cluster, the machine's libvirtd, a tiny QEMU guest with a
// qcow2 disk and an RBD disk, and the vmsnap controller for this "node". Each part is the test
// suite's own harness, so the demo runs exactly what the tests prove. Everything is registered
// with the session for removal the moment it exists.
import { rmSync } from "node:fs";
import { dirname, join } from "node:path";
import { getCephCluster, type CephCluster } from "../../test/support/ceph/cluster.ts";
import { getControlPlane, type ControlPlane } from "../../test/support/kube/control-plane.ts";
import { startController, type ControllerProcess } from "../../test/support/controller/process.ts";
import {
  createRbdGuestDisk,
  guestImage,
  launchGuest,
  type Guest,
} from "../../test/support/guest/index.ts";
import { SYSTEM_URI, useLibvirtd } from "../../test/support/libvirt/libvirtd.ts";
import { createDemoDir, recordControllerRunDir } from "./leftovers.ts";
import { event, heading, seconds, step } from "./say.ts";
import { CLEANUP_ORDER, type Session } from "./session.ts";
import { domainStillDefined } from "./verify.ts";

export const NAMESPACE = "vmsnap-demo";
/** The hypervisor host the controller stands for (NODE_NAME in the DaemonSet). */
export const NODE_NAME = "demo-host";

export interface DemoStack {
  readonly dir: string;
  readonly cp: ControlPlane;
  readonly ceph: CephCluster;
  readonly guest: Guest;
  readonly controller: ControllerProcess;
}

export async function bringUp(session: Session): Promise<DemoStack> {
  heading("Bringing up the parts (all real, all on 127.0.0.1, all removed at the end)");
  const { dir, reaped } = await createDemoDir();
  session.onCleanup("removed the demo folder", CLEANUP_ORDER.folder, async () => {
    rmSync(dir, { recursive: true, force: true });
    return dir;
  });
  if (reaped > 0) event(`removed what ${reaped} earlier, killed demo run(s) left behind`);

  // Independent parts start together; every one finishes (or fails) before the demo goes on, so
  // whatever each created is registered for removal (CLEANUP_ORDER says when it goes).
  const [cp, ceph] = await allSettled([
    step("control plane", getControlPlane, (cp) => `kube-apiserver + etcd at ${cp.server}`).then(
      (cp) => {
        session.onCleanup("stopped kube-apiserver and etcd", CLEANUP_ORDER.controlPlane, () =>
          cp.stop(),
        );
        return cp;
      },
    ),
    step(
      "Ceph",
      () => getCephCluster(),
      (c) => `1 mon + 1 OSD, pool ${c.pool}`,
    ).then((c) => {
      session.onCleanup("stopped Ceph and removed its data", CLEANUP_ORDER.ceph, () => c.stop());
      return c;
    }),
    step("libvirtd", useLibvirtd, (d) =>
      d.startedHere ? `started (pid ${d.pid}), ${d.uri}` : `already running, ${d.uri}`,
    ).then(() => step("guest kernel + initrd", guestImage, (image) => image.kernelPackage)),
  ]);
  session.check();
  const [guest, controller] = await allSettled([
    bootGuest(session, ceph),
    startTheController(session, cp, ceph, dir),
  ]);
  session.check();

  const created = await cp.kubectl(["create", "namespace", NAMESPACE]);
  if (created.code !== 0) throw new Error(`kubectl create namespace: ${created.stderr}`);
  return { dir, cp, ceph, guest, controller };
}

/** An RBD image with ext4, then the guest with a qcow2 disk (vda) and that image (vdb). */
async function bootGuest(session: Session, ceph: CephCluster): Promise<Guest> {
  const disk = await step(
    "RBD disk",
    () => createRbdGuestDisk(ceph, { sizeMiB: 64 }),
    (d) => `${d.pool}/${d.image}, ext4, 64 MiB`,
  );
  session.check();
  const guest = await step(
    "guest defined",
    () => launchGuest({ label: "demo", fileDisks: 1, rbdDisks: [disk], owners: [NAMESPACE] }),
    (g) => `${g.name}: vda qcow2 file, vdb RBD`,
  );
  session.onCleanup("removed the guest and its disks", CLEANUP_ORDER.guest, async () => {
    await guest.remove();
    if (await domainStillDefined(guest.name)) throw new Error(`${guest.name} is still defined`);
  });
  const bootMs = await session.interruptible(guest.waitForAgent(120_000));
  event(`${"guest agent answers".padEnd(22)} ${seconds(bootMs).padStart(7)}  after define`);
  return guest;
}

/** The controller as a process, as the DaemonSet would run it on NODE_NAME. */
async function startTheController(
  session: Session,
  cp: ControlPlane,
  ceph: CephCluster,
  dir: string,
): Promise<ControllerProcess> {
  const controller = await step(
    "vmsnap controller",
    () =>
      startController({
        kubeconfig: cp.kubeconfigPath,
        nodeName: NODE_NAME,
        libvirtUri: SYSTEM_URI,
        ceph: { confPath: ceph.confPath, clientId: ceph.clientId, keyringPath: ceph.keyringPath },
        memoryDir: join(dir, "memory"),
        // As deployed: deny domains without an owner element; the demo's guest declares its own.
        unownedDomains: "",
        extraArgs: ["--log-level", "info"],
      }),
    (c) => `pid ${c.pid}, node ${NODE_NAME}, /metrics on 127.0.0.1:${c.metricsPort}`,
  );
  recordControllerRunDir(dir, dirname(controller.logFile));
  session.onCleanup("stopped the controller (SIGTERM)", CLEANUP_ORDER.controller, async () => {
    await controller.stop();
    rmSync(dirname(controller.logFile), { recursive: true, force: true });
  });
  session.onLastResort(() => process.kill(controller.pid, "SIGKILL"));
  return controller;
}

/** Like Promise.all, but waits for every promise to settle before rejecting with the first error. */
async function allSettled<T extends readonly unknown[]>(
  promises: readonly [...{ [K in keyof T]: Promise<T[K]> }],
): Promise<T> {
  const results = await Promise.allSettled(promises);
  const failed = results.find((r): r is PromiseRejectedResult => r.status === "rejected");
  if (failed) throw failed.reason;
  return results.map((r) => (r as PromiseFulfilledResult<unknown>).value) as unknown as T;
}
