// The agent's first act: read from the API server which of this node's snapshots and restores a
// previous process left in a frozen (or paused) window, and settle those guests with libvirt —
// before the agent waits for its thaw guard, which may be down as well. Without this, an agent
// whose guard is unreachable would wait for it (and give up) with a guest still frozen, on every
// restart while the guard stays away.
import type { KubeConfig } from "@kubernetes/client-node";
import { vmrestores, type VMRestore } from "../api/restore-types.ts";
import { snapshotsOnNode, vmsnapshots, type VMSnapshot } from "../api/types.ts";
import { KubeObjectClient } from "../kube/object-client.ts";
import {
  restoreLeftovers,
  settleLeftovers,
  snapshotLeftovers,
  type LeftoverHypervisor,
  type LeftoverOptions,
} from "./leftovers.ts";

export interface AtStartOptions extends LeftoverOptions {
  readonly kubeConfig: KubeConfig;
  readonly node: string;
  /** Only this namespace's objects (the agent's --namespace), else every namespace. */
  readonly namespace?: string;
  /** How long the API server may take to list them: past it, the controllers' own recovery
   *  (after their caches sync) is the next chance. */
  readonly listTimeoutMs: number;
}

/** Settles the leftovers it can find; never throws (what it could not do is logged). */
export async function settleLeftoversAtStart(
  hv: LeftoverHypervisor,
  o: AtStartOptions,
): Promise<void> {
  let snapshots: VMSnapshot[];
  let restores: VMRestore[];
  try {
    [snapshots, restores] = await withTimeout(
      Promise.all([
        new KubeObjectClient<VMSnapshot>(o.kubeConfig, vmsnapshots).list(o.namespace, {
          fieldSelector: snapshotsOnNode(o.node),
        }),
        new KubeObjectClient<VMRestore>(o.kubeConfig, vmrestores).list(o.namespace),
      ]),
      o.listTimeoutMs,
    );
  } catch (err) {
    o.log?.("could not list this node's snapshots and restores to thaw leftovers first", {
      error: String(err),
    });
    return;
  }
  const now = o.now();
  await settleLeftovers(
    hv,
    [...snapshotLeftovers(snapshots, now), ...restoreLeftovers(restores, o.node, now)],
    o,
  );
}

function withTimeout<T>(work: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms);
  });
  return Promise.race([work, timeout]).finally(() => clearTimeout(timer));
}
