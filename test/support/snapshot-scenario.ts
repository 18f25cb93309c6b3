// One place that brings up everything a controller test needs: the real control plane, the real
// Ceph cluster, the daemon-hosted libvirt test driver, and a running vmsnap controller for a
// node of its own; plus helpers to make domains with RBD disks, apply VMSnapshots, watch the
// phases they go through, and look at what Ceph holds.
import { randomBytes } from "node:crypto";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Watch } from "@kubernetes/client-node";
import {
  GROUP,
  PLURAL,
  VERSION,
  type Phase,
  type VMSnapshot,
  type VMSnapshotSpec,
} from "../../src/api/types.ts";
import { groupNameForDomain } from "../../src/storage/rbd/names.ts";
import { getCephCluster, type CephCluster } from "./ceph.ts";
import { getControlPlane, type ControlPlane } from "./control-plane.ts";
import {
  startController,
  type ControllerProcess,
  type ControllerProcessOptions,
} from "./controller-process.ts";
import {
  testDomainXml,
  uniqueTestDomainName,
  useLibvirtTestHost,
  type LibvirtTestHost,
} from "./libvirt-test-host.ts";
import { virsh } from "./libvirtd-virsh.ts";
import { waitFor } from "./processes.ts";

export interface Scenario {
  readonly cp: ControlPlane;
  readonly ceph: CephCluster;
  readonly host: LibvirtTestHost;
  readonly namespace: string;
  readonly nodeName: string;
  controller: ControllerProcess;
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
  }): Promise<TestDomain>;
  apply(
    name: string,
    spec: Partial<VMSnapshotSpec> & { source?: VMSnapshotSpec["source"] },
    domain: string,
  ): Promise<void>;
  get(name: string): Promise<VMSnapshot>;
  /** Records every phase the object shows on a watch, from before it exists. */
  watchPhases(name: string): Promise<PhaseRecorder>;
  waitFinal(name: string, timeoutMs?: number): Promise<VMSnapshot>;
  /**
   * Resolves with the object the moment a watch shows it matching `predicate` (call before
   * applying); `react` runs synchronously inside the watch callback, for timing-critical steps.
   */
  watchFor(
    name: string,
    predicate: (snapshot: VMSnapshot) => boolean,
    react?: (snapshot: VMSnapshot) => void,
  ): Promise<{ seen: Promise<VMSnapshot>; stop(): void }>;
  groupSnapshots(domain: string): Promise<string[]>;
  imageSnapshots(image: string): Promise<string[]>;
  stop(): Promise<void>;
}

export interface TestDomain {
  readonly name: string;
  readonly images: string[];
}

export interface PhaseRecorder {
  readonly phases: Phase[];
  /** Waits until the watch has delivered `phase` (a poll can see it first), then stops. */
  stopAfter(phase: Phase, timeoutMs?: number): Promise<void>;
  stop(): void;
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
  const kc = cp.kubeConfig();
  const scenario: Scenario = {
    cp,
    ceph,
    host,
    namespace,
    nodeName,
    controller: await startController(controllerOptions()),
    async startController(extra) {
      scenario.controller = await startController(controllerOptions(extra));
      return scenario.controller;
    },
    async newDomain({
      rbdDisks,
      guestAgent = true,
      extraDisksXml = "",
      label = "vm",
      state = "running",
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
      if (state === "shutoff") {
        const file = join(mkdtempSync(join(tmpdir(), "vmsnap-dom-")), "domain.xml");
        writeFileSync(file, xml);
        await virsh(["define", file], { uri: host.uri });
      } else {
        await host.defineRunningDomain(name, xml);
        if (state === "paused") await host.hypervisor().suspend(name);
      }
      return { name, images };
    },
    async apply(name, spec, domain) {
      const manifest = {
        apiVersion: `${GROUP}/${VERSION}`,
        kind: "VMSnapshot",
        metadata: { name, namespace },
        spec: { ...spec, source: spec.source ?? { domain, node: nodeName } },
      };
      const result = await cp.kubectl(["apply", "-f", "-"], JSON.stringify(manifest));
      if (result.code !== 0) throw new Error(`kubectl apply ${name}: ${result.stderr}`);
    },
    async get(name) {
      const result = await cp.kubectl(["get", "vmsnap", name, "-n", namespace, "-o", "json"]);
      if (result.code !== 0) throw new Error(`kubectl get ${name}: ${result.stderr}`);
      return JSON.parse(result.stdout) as VMSnapshot;
    },
    async watchPhases(name) {
      const phases: Phase[] = [];
      const watch = new Watch(kc);
      const request = await watch.watch(
        `/apis/${GROUP}/${VERSION}/namespaces/${namespace}/${PLURAL}`,
        { fieldSelector: `metadata.name=${name}` },
        (_type: string, object: VMSnapshot) => {
          const phase = object.status?.phase;
          if (phase && phases.at(-1) !== phase) phases.push(phase);
        },
        () => undefined,
      );
      return {
        phases,
        async stopAfter(phase, timeoutMs = 10_000) {
          try {
            await waitFor(
              `the watch to deliver ${phase}`,
              () => phases.includes(phase),
              timeoutMs,
              20,
            );
          } finally {
            request.abort();
          }
        },
        stop: () => request.abort(),
      };
    },
    async watchFor(name, predicate, react) {
      let resolve!: (snapshot: VMSnapshot) => void;
      const seen = new Promise<VMSnapshot>((r) => (resolve = r));
      let fired = false;
      const request = await new Watch(kc).watch(
        `/apis/${GROUP}/${VERSION}/namespaces/${namespace}/${PLURAL}`,
        { fieldSelector: `metadata.name=${name}` },
        (_type: string, object: VMSnapshot) => {
          if (fired || !predicate(object)) return;
          fired = true;
          react?.(object);
          resolve(object);
        },
        () => undefined,
      );
      return { seen, stop: () => request.abort() };
    },
    async waitFinal(name, timeoutMs = 60_000) {
      let last: VMSnapshot | undefined;
      await waitFor(
        `VMSnapshot ${name} to finish`,
        async () => {
          last = await scenario.get(name);
          return last.status?.phase === "Succeeded" || last.status?.phase === "Failed";
        },
        timeoutMs,
        100,
      );
      return last!;
    },
    async groupSnapshots(domain) {
      const out = await rbd([
        "group",
        "snap",
        "ls",
        `${ceph.pool}/${groupNameForDomain(domain)}`,
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
  return scenario;
}
