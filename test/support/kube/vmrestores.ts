// VMRestores in one namespace as a user drives them: kubectl apply, get, wait until final, and
// the phases a watch saw on the way.
import { Watch } from "@kubernetes/client-node";
import type { RestorePhase, VMRestore, VMRestoreSpec } from "../../../src/api/restore-types.ts";
import { GROUP, VERSION } from "../../../src/api/types.ts";
import type { ControlPlane } from "./control-plane.ts";
import { waitUntilFinal } from "./wait-final.ts";

export interface VMRestores {
  apply(name: string, spec: VMRestoreSpec): Promise<void>;
  get(name: string): Promise<VMRestore>;
  waitFinal(name: string, timeoutMs?: number): Promise<VMRestore>;
  /** Starts recording the phases of `name` before it is applied. */
  watchPhases(name: string): Promise<{ phases: RestorePhase[]; stop(): void }>;
  /** Calls `react` once, from the watch, the first time `name` matches `predicate`. */
  watchFor(
    name: string,
    predicate: (restore: VMRestore) => boolean,
    react: (restore: VMRestore) => void,
  ): Promise<{ stop(): void }>;
}

export function vmrestoresIn(o: {
  cp: ControlPlane;
  namespace: string;
  controllerLog?: () => string;
}): VMRestores {
  const { cp, namespace } = o;
  const watch = (name: string, onObject: (object: VMRestore) => void) =>
    new Watch(cp.kubeConfig()).watch(
      `/apis/${GROUP}/${VERSION}/namespaces/${namespace}/vmrestores`,
      { fieldSelector: `metadata.name=${name}` },
      (_type: string, object: VMRestore) => onObject(object),
      () => undefined,
    );
  const restores: VMRestores = {
    async apply(name, spec) {
      const manifest = {
        apiVersion: `${GROUP}/${VERSION}`,
        kind: "VMRestore",
        metadata: { name, namespace },
        spec,
      };
      const result = await cp.kubectl(["apply", "-f", "-"], JSON.stringify(manifest));
      if (result.code !== 0) throw new Error(`kubectl apply ${name}: ${result.stderr}`);
    },
    async get(name) {
      const result = await cp.kubectl(["get", "vmrestore", name, "-n", namespace, "-o", "json"]);
      if (result.code !== 0) throw new Error(`kubectl get vmrestore ${name}: ${result.stderr}`);
      return JSON.parse(result.stdout) as VMRestore;
    },
    waitFinal: (name, timeoutMs = 60_000) =>
      waitUntilFinal(`VMRestore ${name}`, () => restores.get(name), timeoutMs, o.controllerLog),
    async watchPhases(name) {
      const phases: RestorePhase[] = [];
      const request = await watch(name, (object) => {
        const phase = object.status?.phase;
        if (phase && phases.at(-1) !== phase) phases.push(phase);
      });
      return { phases, stop: () => request.abort() };
    },
    async watchFor(name, predicate, react) {
      let fired = false;
      const request = await watch(name, (object) => {
        if (fired || !predicate(object)) return;
        fired = true;
        react(object);
      });
      return { stop: () => request.abort() };
    },
  };
  return restores;
}
