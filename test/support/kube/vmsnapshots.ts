// What a test does with VMSnapshots, the way a user does it: apply with kubectl, read back, wait
// for the end, and watch the phases go by. Shared by the controller tests on the test driver and
// the end-to-end tests on real QEMU guests.
import { Watch } from "@kubernetes/client-node";
import {
  GROUP,
  PLURAL,
  VERSION,
  type Condition,
  type Phase,
  type VMSnapshot,
  type VMSnapshotSpec,
} from "../../../src/api/types.ts";
import type { ControlPlane } from "./control-plane.ts";
import { waitFor } from "../processes.ts";
import { waitUntilFinal } from "./wait-final.ts";

export type SnapshotSpec = Partial<VMSnapshotSpec> & { source?: VMSnapshotSpec["source"] };

export interface PhaseRecorder {
  readonly phases: Phase[];
  /** Waits until the watch has delivered `phase` (a poll can see it first), then stops. */
  stopAfter(phase: Phase | undefined, timeoutMs?: number): Promise<void>;
  stop(): void;
}

export interface VMSnapshots {
  /** Creates a VMSnapshot of `domain` on the node (unless `spec.source` says otherwise). */
  apply(name: string, spec: SnapshotSpec, domain: string): Promise<void>;
  get(name: string): Promise<VMSnapshot>;
  /** `kubectl delete`, waiting until the finalizer let it go (at most 60 s). */
  delete(name: string): Promise<void>;
  /** Polls until Succeeded or Failed; a timeout quotes the last status and the controller log. */
  waitFinal(name: string, timeoutMs?: number): Promise<VMSnapshot>;
  /** Records every phase the object shows on a watch, from before it exists (call before apply). */
  watchPhases(name: string): Promise<PhaseRecorder>;
  /**
   * Resolves with the object the moment a watch shows it matching `predicate` (call before
   * applying); `react` runs synchronously inside the watch callback, for timing-critical steps.
   */
  watchFor(
    name: string,
    predicate: (snapshot: VMSnapshot) => boolean,
    react?: (snapshot: VMSnapshot) => void,
  ): Promise<{ seen: Promise<VMSnapshot>; stop(): void }>;
}

/** A condition of the snapshot's status by type. */
export function conditionOf(snapshot: VMSnapshot, type: Condition["type"]): Condition | undefined {
  return snapshot.status?.conditions?.find((c) => c.type === type);
}

export function vmsnapshotsIn(o: {
  cp: ControlPlane;
  namespace: string;
  nodeName: string;
  /** The controller's log, quoted when a wait times out. */
  controllerLog?: () => string;
}): VMSnapshots {
  const { cp, namespace, nodeName } = o;
  const path = `/apis/${GROUP}/${VERSION}/namespaces/${namespace}/${PLURAL}`;
  const watch = (name: string, onObject: (object: VMSnapshot) => void) =>
    new Watch(cp.kubeConfig()).watch(
      path,
      { fieldSelector: `metadata.name=${name}` },
      (_type: string, object: VMSnapshot) => onObject(object),
      () => undefined,
    );
  const snapshots: VMSnapshots = {
    async apply(name, spec, domain) {
      const manifest = {
        apiVersion: `${GROUP}/${VERSION}`,
        kind: "VMSnapshot",
        metadata: { name, namespace },
        spec: { ...spec, source: spec.source ?? { domain, node: nodeName } },
      };
      // JSON, not YAML: kubectl reads YAML 1.1, where an unquoted `yes` would be a boolean.
      const result = await cp.kubectl(["apply", "-f", "-"], JSON.stringify(manifest));
      if (result.code !== 0) throw new Error(`kubectl apply ${name}: ${result.stderr}`);
    },
    async get(name) {
      const result = await cp.kubectl(["get", "vmsnap", name, "-n", namespace, "-o", "json"]);
      if (result.code !== 0) throw new Error(`kubectl get ${name}: ${result.stderr}`);
      return JSON.parse(result.stdout) as VMSnapshot;
    },
    async delete(name) {
      const args = ["delete", "vmsnap", name, "-n", namespace, "--timeout=60s"];
      const result = await cp.kubectl(args);
      if (result.code !== 0) throw new Error(`kubectl delete ${name}: ${result.stderr}`);
    },
    waitFinal: (name, timeoutMs = 60_000) =>
      waitUntilFinal(`VMSnapshot ${name}`, () => snapshots.get(name), timeoutMs, o.controllerLog),
    async watchPhases(name) {
      const phases: Phase[] = [];
      const request = await watch(name, (object) => {
        const phase = object.status?.phase;
        if (phase && phases.at(-1) !== phase) phases.push(phase);
      });
      return {
        phases,
        async stopAfter(phase, timeoutMs = 10_000) {
          try {
            // On a timeout the caller's assertion on `phases` says what was missing.
            await waitFor(
              `the watch to deliver ${phase}`,
              () => phase !== undefined && phases.includes(phase),
              timeoutMs,
              20,
            ).catch(() => undefined);
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
      const request = await watch(name, (object) => {
        if (fired || !predicate(object)) return;
        fired = true;
        react?.(object);
        resolve(object);
      });
      return { seen, stop: () => request.abort() };
    },
  };
  return snapshots;
}
