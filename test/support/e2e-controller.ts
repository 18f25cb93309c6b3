// The vmsnap controller against the machine's real libvirtd (qemu:///system), for end-to-end
// tests with real QEMU guests: the shared control plane and Ceph cluster, one controller process
// for a node of its own, shared by every e2e test file of the run (starting one costs seconds
// that the e2e time budget does not have twice), and what a test does with VMSnapshots through
// kubectl: apply, read, wait for the end, record the phases a watch shows.
import { randomBytes } from "node:crypto";
import { Watch } from "@kubernetes/client-node";
import {
  GROUP,
  PLURAL,
  VERSION,
  type Condition,
  type Phase,
  type VMSnapshot,
  type VMSnapshotSpec,
} from "../../src/api/types.ts";
import { getCephCluster, type CephCluster } from "./ceph.ts";
import { getControlPlane, type ControlPlane } from "./control-plane.ts";
import { startController, type ControllerProcess } from "./controller-process.ts";
import { SYSTEM_URI, useLibvirtd } from "./libvirtd.ts";
import { waitFor } from "./processes.ts";

export type SnapshotSpec = Omit<VMSnapshotSpec, "source">;

export interface E2eController {
  readonly cp: ControlPlane;
  readonly ceph: CephCluster;
  readonly namespace: string;
  readonly nodeName: string;
  readonly controller: ControllerProcess;
  /** Creates a VMSnapshot of `domain` on this controller's node. */
  apply(name: string, spec: SnapshotSpec, domain: string): Promise<void>;
  get(name: string): Promise<VMSnapshot>;
  /** Polls until the phase is Succeeded or Failed. */
  waitFinal(name: string, timeoutMs?: number): Promise<VMSnapshot>;
  /** Every phase a watch shows for `name`, from before it exists (call before `apply`). */
  watchPhases(name: string): Promise<PhaseWatch>;
}

export interface PhaseWatch {
  readonly phases: Phase[];
  /**
   * Stops once the watch has shown `final` too (or after 10 s): polling may see the last phase
   * before the watch delivers it, and stopping then would lose it.
   */
  stopAt(final: Phase | undefined): Promise<void>;
}

/** A condition of the snapshot's status by type. */
export function conditionOf(snapshot: VMSnapshot, type: Condition["type"]): Condition | undefined {
  return snapshot.status?.conditions?.find((c) => c.type === type);
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
  const controller = await startController({
    kubeconfig: cp.kubeconfigPath,
    nodeName,
    namespace,
    libvirtUri: SYSTEM_URI,
    ceph: { confPath: ceph.confPath, clientId: ceph.clientId, keyringPath: ceph.keyringPath },
  });
  const path = `/apis/${GROUP}/${VERSION}/namespaces/${namespace}/${PLURAL}`;

  const e2e: E2eController = {
    cp,
    ceph,
    namespace,
    nodeName,
    controller,
    async apply(name, spec, domain) {
      const manifest = {
        apiVersion: `${GROUP}/${VERSION}`,
        kind: "VMSnapshot",
        metadata: { name, namespace },
        spec: { ...spec, source: { domain, node: nodeName } },
      };
      const result = await cp.kubectl(["apply", "-f", "-"], JSON.stringify(manifest));
      if (result.code !== 0) throw new Error(`kubectl apply ${name}: ${result.stderr}`);
    },
    async get(name) {
      const result = await cp.kubectl(["get", "vmsnap", name, "-n", namespace, "-o", "json"]);
      if (result.code !== 0) throw new Error(`kubectl get ${name}: ${result.stderr}`);
      return JSON.parse(result.stdout) as VMSnapshot;
    },
    async waitFinal(name, timeoutMs = 90_000) {
      let last: VMSnapshot | undefined;
      try {
        await waitFor(
          `VMSnapshot ${name} to finish`,
          async () => {
            last = await e2e.get(name);
            return last.status?.phase === "Succeeded" || last.status?.phase === "Failed";
          },
          timeoutMs,
          200,
        );
      } catch (err) {
        // What the controller said is the first thing anyone debugging this wants to see.
        throw new Error(
          `${(err as Error).message}\nlast status: ${JSON.stringify(last?.status)}\n` +
            `--- controller log ---\n${controller.log().slice(-6000)}`,
          { cause: err },
        );
      }
      return last!;
    },
    async watchPhases(name) {
      const phases: Phase[] = [];
      const request = await new Watch(cp.kubeConfig()).watch(
        path,
        { fieldSelector: `metadata.name=${name}` },
        (_type: string, object: VMSnapshot) => {
          const phase = object.status?.phase;
          if (phase && phases.at(-1) !== phase) phases.push(phase);
        },
        () => undefined,
      );
      return {
        phases,
        async stopAt(final) {
          await waitFor(`the watch to show ${final}`, () => phases.at(-1) === final, 10_000, 50)
            .catch(() => undefined) // the assertion on `phases` tells what was missing
            .finally(() => request.abort());
        },
      };
    },
  };
  return e2e;
}
