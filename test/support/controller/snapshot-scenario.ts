// One place that brings up everything a controller test needs: the real control plane, the real
// Ceph cluster, the daemon-hosted libvirt test driver, and a running vmsnap controller for a
// node of its own; plus helpers to make domains with RBD disks, apply VMSnapshots, watch the
// phases they go through, and look at what Ceph holds.
import { randomBytes } from "node:crypto";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { groupNameForDomainUUID } from "../../../src/storage/rbd/names.ts";
import { getCephCluster, type CephCluster } from "../ceph/cluster.ts";
import { getControlPlane, type ControlPlane } from "../kube/control-plane.ts";
import {
  startController,
  type ControllerProcess,
  type ControllerProcessOptions,
} from "./process.ts";
import {
  testDomainXml,
  uniqueTestDomainName,
  useLibvirtTestHost,
  type LibvirtTestHost,
} from "../libvirt/test-driver-host.ts";
import { virsh } from "../libvirt/virsh.ts";
import { vmsnapshotsIn, type VMSnapshots } from "../kube/vmsnapshots.ts";
import { vmrestoresIn, type VMRestores } from "../kube/vmrestores.ts";

export interface Scenario extends VMSnapshots {
  /** VMRestores in the scenario's namespace, as a user drives them. */
  readonly restores: VMRestores;
  readonly cp: ControlPlane;
  readonly ceph: CephCluster;
  readonly host: LibvirtTestHost;
  readonly namespace: string;
  readonly nodeName: string;
  readonly controller: ControllerProcess;
  /** Starts a (new) controller for this scenario's node, e.g. after a SIGKILL. */
  startController(extra?: Partial<ControllerProcessOptions>): Promise<ControllerProcess>;
  /** A running domain with `rbdDisks` fresh RBD images (and what else `extraDisksXml` adds). */
  newDomain(o: {
    rbdDisks: number;
    guestAgent?: boolean;
    extraDisksXml?: string;
    label?: string;
    /** running (default), paused (suspended after start), or shutoff (defined, never started). */
    state?: "running" | "paused" | "shutoff";
    /** Defined before it is started, as real VMs are (a running test domain is otherwise
     *  transient: stopping it would delete it). */
    persistent?: boolean;
  }): Promise<TestDomain>;
  /** The snapshots in the RBD group of the domain (by its UUID, as the controller names it). */
  groupSnapshots(domain: string): Promise<string[]>;
  imageSnapshots(image: string): Promise<string[]>;
  stop(): Promise<void>;
}

export interface TestDomain {
  readonly name: string;
  readonly images: string[];
}

export async function startScenario(
  options: Partial<ControllerProcessOptions> = {},
): Promise<Scenario> {
  const [cp, ceph, host] = await Promise.all([
    getControlPlane(),
    getCephCluster(),
    useLibvirtTestHost(),
  ]);
  const namespace = await cp.newNamespace("snap");
  const nodeName = `hv-${randomBytes(3).toString("hex")}`;
  // One memory-image folder for every controller of this scenario, so a restarted controller
  // (and the test) sees what the killed one wrote.
  const memoryDir = mkdtempSync(join(tmpdir(), "vmsnap-mem-"));
  const controllerOptions = (
    extra: Partial<ControllerProcessOptions> = {},
  ): ControllerProcessOptions => ({
    kubeconfig: cp.kubeconfigPath,
    nodeName,
    namespace,
    libvirtUri: host.uri,
    memoryDir,
    ceph: { confPath: ceph.confPath, clientId: ceph.clientId, keyringPath: ceph.keyringPath },
    ...options,
    ...extra,
  });
  const rbd = async (args: string[]) => {
    const r = await ceph.rbd(args);
    if (r.code !== 0) throw new Error(`rbd ${args.join(" ")}: ${r.stderr}`);
    return r.stdout;
  };
  let controller: ControllerProcess;
  const scenario: Scenario = {
    ...vmsnapshotsIn({ cp, namespace, nodeName, controllerLog: () => controller.log() }),
    restores: vmrestoresIn({ cp, namespace, controllerLog: () => controller.log() }),
    cp,
    ceph,
    host,
    namespace,
    nodeName,
    get controller() {
      return controller;
    },
    async startController(extra) {
      controller = await startController(controllerOptions(extra));
      return controller;
    },
    async newDomain({
      rbdDisks,
      guestAgent = true,
      extraDisksXml = "",
      label = "vm",
      state = "running",
      persistent = false,
    }) {
      const name = uniqueTestDomainName(label);
      const images = Array.from({ length: rbdDisks }, (_, k) => `${name}-d${k}`);
      for (const image of images) await rbd(["create", "--size", "4", `${ceph.pool}/${image}`]);
      let xml = testDomainXml({
        name,
        rbdDisks: images.map((i) => `${ceph.pool}/${i}`),
        guestAgent,
      });
      if (extraDisksXml) xml = xml.replace("</devices>", `${extraDisksXml}\n  </devices>`);
      if (state === "shutoff" || persistent) {
        const file = join(mkdtempSync(join(tmpdir(), "vmsnap-dom-")), "domain.xml");
        writeFileSync(file, xml);
        await virsh(["define", file], { uri: host.uri });
        if (state !== "shutoff") await host.hypervisor().start(name);
        if (state === "paused") await host.hypervisor().suspend(name);
      } else {
        await host.defineRunningDomain(name, xml);
        if (state === "paused") await host.hypervisor().suspend(name);
      }
      return { name, images };
    },
    async groupSnapshots(domain) {
      const { uuid } = await host.hypervisor().domainInfo(domain);
      const out = await rbd([
        "group",
        "snap",
        "ls",
        `${ceph.pool}/${groupNameForDomainUUID(uuid)}`,
        "--format",
        "json",
      ]);
      return (JSON.parse(out || "[]") as Array<{ snapshot: string }>).map((s) => s.snapshot);
    },
    async imageSnapshots(image) {
      const out = await rbd(["snap", "ls", "--all", `${ceph.pool}/${image}`, "--format", "json"]);
      return (JSON.parse(out || "[]") as Array<{ name: string }>).map((s) => s.name);
    },
    async stop() {
      await scenario.controller.stop();
    },
  };
  await scenario.startController();
  return scenario;
}
