// What every controller benchmark needs: controllers started as real processes (as the tests
// do), many test-driver domains made quickly, VMSnapshots created through the API, and one
// namespace-wide watch that says when each reached a final phase and when the bench saw it.
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { CustomObjectsApi, Watch, type KubeConfig } from "@kubernetes/client-node";
import {
  GROUP,
  KIND,
  PLURAL,
  VERSION,
  type VMSnapshot,
  type VMSnapshotSpec,
} from "../../src/api/types.ts";
import { ConnectionReusingKubeConfig } from "../../src/kube/kube-config.ts";
import type { CephCluster } from "../../test/support/ceph/cluster.ts";
import { REPO_ROOT, type ControlPlane } from "../../test/support/kube/control-plane.ts";
import { startController, type ControllerProcess } from "../../test/support/controller/process.ts";
import { virsh } from "../../test/support/libvirt/virsh.ts";
import { childrenOf } from "./proc.ts";
import { scrape, type Sample } from "../../test/support/exposition.ts";

/**
 * `kc`'s credentials in the controller's own ConnectionReusingKubeConfig, so the bench's load
 * generator keeps one connection open as the controller does and disturbs the measurement less.
 */
export function reusingKubeConfig(kc: KubeConfig): ConnectionReusingKubeConfig {
  const shared = new ConnectionReusingKubeConfig();
  shared.loadFromOptions({
    clusters: kc.clusters,
    users: kc.users,
    contexts: kc.contexts,
    currentContext: kc.currentContext,
  });
  return shared;
}

export interface BenchController {
  readonly process: ControllerProcess;
  readonly node: string;
  readonly namespace: string;
  metrics(): Promise<Sample[]>;
  /** The thaw guard's pid (a child of the controller), if it runs. */
  guardPid(): number | undefined;
}

/** The agent with the benchmark-only `--bench-storage` flag. */
export const BENCH_MAIN = join(REPO_ROOT, "bench/lib/bench-main.ts");

/** Ceph settings for a controller that never touches Ceph (`--bench-storage noop`). */
const NO_CEPH = {
  confPath: "/nonexistent/ceph.conf",
  clientId: "none",
  keyringPath: "/nonexistent",
};

export async function startBenchController(o: {
  cp: ControlPlane;
  libvirtUri: string;
  node: string;
  namespace: string;
  storage: "real" | "sequential" | "noop";
  ceph?: CephCluster;
  cephOpTimeoutSeconds?: number;
  memoryDir?: string;
  logLevel?: "debug" | "info";
}): Promise<BenchController> {
  const proc = await startController({
    kubeconfig: o.cp.kubeconfigPath,
    nodeName: o.node,
    namespace: o.namespace,
    libvirtUri: o.libvirtUri,
    ceph: o.ceph
      ? { confPath: o.ceph.confPath, clientId: o.ceph.clientId, keyringPath: o.ceph.keyringPath }
      : NO_CEPH,
    ...(o.cephOpTimeoutSeconds ? { cephOpTimeoutSeconds: o.cephOpTimeoutSeconds } : {}),
    ...(o.memoryDir ? { memoryDir: o.memoryDir } : {}),
    // Workers and the frozen-guest cap stay at the controller's defaults (4 and 4): measured,
    // not tuned. startController passes --log-level debug; the last flag wins.
    workers: 4,
    maxFrozenGuests: 4,
    entry: BENCH_MAIN,
    extraArgs: [
      "--bench-storage",
      o.storage,
      ...(o.logLevel && o.logLevel !== "debug" ? ["--log-level", o.logLevel] : []),
    ],
  });
  const url = `http://127.0.0.1:${proc.metricsPort}/metrics`;
  return {
    process: proc,
    node: o.node,
    namespace: o.namespace,
    metrics: () => scrape(url),
    guardPid: () => childrenOf(proc.pid).find((c) => c.cmdline.includes("guard"))?.pid,
  };
}

/**
 * Creates running test-driver domains, many per virsh process (one `create` each, joined with
 * `;`), since a virsh process per domain costs ~50 ms here.
 */
export async function createTestDomains(
  uri: string,
  domains: ReadonlyArray<{ name: string; xml: string }>,
  batch = 50,
): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), "vmsnap-bench-xml-"));
  try {
    for (let i = 0; i < domains.length; i += batch) {
      const slice = domains.slice(i, i + batch);
      const commands = slice.map((d, k) => {
        const path = join(dir, `${i + k}.xml`);
        writeFileSync(path, d.xml);
        return `create ${path}`;
      });
      await virsh([commands.join(" ; ")], { uri, timeoutMs: 120_000 });
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

export interface Finished {
  readonly snapshot: VMSnapshot;
  /** Date.now() when the bench's watch delivered the final phase. */
  readonly seenAt: number;
}

/**
 * VMSnapshots of one namespace: created through the API (recording when), and a watch on the
 * namespace that resolves `finished(name)` once the object shows Succeeded or Failed.
 */
export class SnapshotDriver {
  private readonly api: CustomObjectsApi;
  private readonly done = new Map<string, Finished>();
  private readonly waiters = new Map<string, (f: Finished) => void>();
  private abort: AbortController | undefined;
  private resourceVersion: string | undefined;
  private stopped = false;
  private restarts = 0;
  /** Date.now() just before each create was sent. */
  readonly appliedAt = new Map<string, number>();
  /** Date.now() when the list or watch first showed each object (for ones others create). */
  readonly firstSeenAt = new Map<string, number>();

  constructor(
    private readonly kubeConfig: KubeConfig,
    readonly namespace: string,
  ) {
    this.api = reusingKubeConfig(kubeConfig).makeApiClient(CustomObjectsApi);
  }

  async start(): Promise<void> {
    const list = (await this.api.listNamespacedCustomObject({
      group: GROUP,
      version: VERSION,
      namespace: this.namespace,
      plural: PLURAL,
    })) as { items: VMSnapshot[]; metadata: { resourceVersion: string } };
    for (const item of list.items) this.observe(item);
    this.resourceVersion = list.metadata.resourceVersion;
    await this.watch();
  }

  private async watch(): Promise<void> {
    this.abort = await new Watch(this.kubeConfig).watch(
      `/apis/${GROUP}/${VERSION}/namespaces/${this.namespace}/${PLURAL}`,
      { resourceVersion: this.resourceVersion, allowWatchBookmarks: true },
      (type: string, object: VMSnapshot) => {
        if (object?.metadata?.resourceVersion)
          this.resourceVersion = object.metadata.resourceVersion;
        if (type === "ADDED" || type === "MODIFIED") this.observe(object);
      },
      () => {
        // The stream ended (server timeout or error): list again and resume, a bounded number
        // of times, so no final phase is missed.
        if (this.stopped || ++this.restarts > 20) return;
        setTimeout(() => void this.start().catch(() => undefined), 200);
      },
    );
  }

  private observe(object: VMSnapshot): void {
    const phase = object.status?.phase;
    const name = object.metadata.name!;
    if (!this.firstSeenAt.has(name)) this.firstSeenAt.set(name, Date.now());
    if ((phase !== "Succeeded" && phase !== "Failed") || this.done.has(name)) return;
    const finished = { snapshot: object, seenAt: Date.now() };
    this.done.set(name, finished);
    this.waiters.get(name)?.(finished);
    this.waiters.delete(name);
  }

  async create(name: string, spec: VMSnapshotSpec, extra: Partial<VMSnapshot["metadata"]> = {}) {
    this.appliedAt.set(name, Date.now());
    return (await this.api.createNamespacedCustomObject({
      group: GROUP,
      version: VERSION,
      namespace: this.namespace,
      plural: PLURAL,
      body: {
        apiVersion: `${GROUP}/${VERSION}`,
        kind: KIND,
        metadata: { name, namespace: this.namespace, ...extra },
        spec,
      },
    })) as VMSnapshot;
  }

  /** Resolves when `name` is final; rejects after `timeoutMs`. */
  finished(name: string, timeoutMs = 120_000): Promise<Finished> {
    const done = this.done.get(name);
    if (done) return Promise.resolve(done);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiters.delete(name);
        reject(new Error(`VMSnapshot ${this.namespace}/${name} not final within ${timeoutMs} ms`));
      }, timeoutMs);
      this.waiters.set(name, (f) => {
        clearTimeout(timer);
        resolve(f);
      });
    });
  }

  stop(): void {
    this.stopped = true;
    this.abort?.abort();
  }
}

/** Runs `tasks` with at most `limit` at once; resolves with their results in order. */
export async function pool<T>(limit: number, tasks: ReadonlyArray<() => Promise<T>>): Promise<T[]> {
  const results = new Array<T>(tasks.length);
  let next = 0;
  const lanes = Array.from({ length: Math.min(limit, tasks.length) }, async () => {
    while (next < tasks.length) {
      const i = next++;
      results[i] = await tasks[i]!();
    }
  });
  await Promise.all(lanes);
  return results;
}
