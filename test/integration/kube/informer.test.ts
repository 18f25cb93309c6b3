// The informer against a real kube-apiserver: the first LIST fills the cache before start()
// resolves, the node field selector keeps other hosts' snapshots out, watch events keep it
// current, and it recovers on its own from an apiserver restart, a connection gone silent, and
// an expired resourceVersion (a real 410 from the apiserver).
import { randomBytes } from "node:crypto";
import {
  CustomObjectsApi,
  KubeConfig,
  PatchStrategy,
  setHeaderOptions,
} from "@kubernetes/client-node";
import { expect } from "chai";
import {
  GROUP,
  PLURAL,
  snapshotsOnNode,
  VERSION,
  vmsnapshots,
  type VMSnapshot,
} from "../../../src/api/types.ts";
import {
  Informer,
  type ChangeKind,
  type InformerDiagnostic,
  type InformerOptions,
} from "../../../src/kube/informer.ts";
import { ConnectionReusingKubeConfig } from "../../../src/kube/kube-config.ts";
import { clientNodeWatchFactory } from "../../../src/kube/watch-stream.ts";
import { getControlPlane, type ControlPlane } from "../../support/kube/control-plane.ts";
import { waitFor } from "../../support/processes.ts";
import { startStallProxy, type StallProxy } from "./stall-proxy.ts";

const uniqueNode = () => `hv-${randomBytes(3).toString("hex")}`;

describe("Informer on a real kube-apiserver", function () {
  this.timeout(120_000);
  let cp: ControlPlane;
  let api: CustomObjectsApi;
  const running: Informer<VMSnapshot>[] = [];
  const proxies: StallProxy[] = [];

  before(async () => {
    cp = await getControlPlane();
    api = cp.kubeConfig().makeApiClient(CustomObjectsApi);
  });

  afterEach(async () => {
    await Promise.all(running.splice(0).map((i) => i.stop()));
    await Promise.all(proxies.splice(0).map((p) => p.close()));
  });

  /** An informer whose changes and diagnostics are recorded. */
  function track({ node, ...options }: Partial<InformerOptions> & { node: string }) {
    const changes: Array<[string, ChangeKind]> = [];
    const diagnostics: InformerDiagnostic[] = [];
    const informer = new Informer<VMSnapshot>({
      kubeConfig: cp.kubeConfig(),
      resource: vmsnapshots,
      fieldSelector: snapshotsOnNode(node),
      onEvent: (d) => diagnostics.push(d),
      ...options,
    });
    informer.onChange((key, kind) => changes.push([key, kind]));
    running.push(informer);
    const saw = (key: string, kind: ChangeKind) =>
      changes.some(([k, c]) => k === key && c === kind);
    const count = (type: InformerDiagnostic["type"], reason?: string) =>
      diagnostics.filter(
        (d) => d.type === type && (reason === undefined || ("reason" in d && d.reason === reason)),
      ).length;
    return { informer, changes, diagnostics, saw, count };
  }

  const create = (namespace: string, name: string, node: string) =>
    api.createNamespacedCustomObject({
      group: GROUP,
      version: VERSION,
      plural: PLURAL,
      namespace,
      body: {
        apiVersion: `${GROUP}/${VERSION}`,
        kind: "VMSnapshot",
        metadata: { name },
        spec: { source: { domain: name, node } },
      },
    });

  /** Creates `during-stall` and waits (20 s at most) until the informer reports it added. */
  async function createDuringStall(
    namespace: string,
    node: string,
    saw: (key: string, kind: ChangeKind) => boolean,
  ): Promise<void> {
    await create(namespace, "during-stall", node);
    await waitFor(
      "the change made during the stall",
      () => saw(`${namespace}/during-stall`, "added"),
      20_000,
      20,
    );
  }

  const label = (namespace: string, name: string, value: string) =>
    api.patchNamespacedCustomObject(
      {
        group: GROUP,
        version: VERSION,
        plural: PLURAL,
        namespace,
        name,
        body: { metadata: { labels: { touched: value } } },
      },
      setHeaderOptions("Content-Type", PatchStrategy.MergePatch),
    );

  const remove = (namespace: string, name: string) =>
    api.deleteNamespacedCustomObject({
      group: GROUP,
      version: VERSION,
      plural: PLURAL,
      namespace,
      name,
    });

  describe("the first list", () => {
    it("start() resolves once every snapshot of this node, across namespaces and pages, is cached", async () => {
      const node = uniqueNode();
      const [ns1, ns2] = [await cp.newNamespace("inf"), await cp.newNamespace("inf")];
      await create(ns1, "a", node);
      await create(ns1, "b", "hv-elsewhere");
      await create(ns2, "c", node);
      await create(ns2, "d", node);
      const { informer, diagnostics, changes } = track({ node, pageSize: 1 });
      expect(informer.hasSynced()).to.equal(false);
      await informer.start();
      // Checked synchronously after start(): nothing had time to arrive by watch.
      expect(informer.hasSynced()).to.equal(true);
      expect(
        informer
          .list()
          .map((s) => `${s.metadata.namespace}/${s.metadata.name}`)
          .sort(),
      ).to.deep.equal([`${ns1}/a`, `${ns2}/c`, `${ns2}/d`].sort());
      expect(informer.get(ns1, "b")).to.equal(undefined);
      expect(changes.map(([, kind]) => kind)).to.deep.equal(["added", "added", "added"]);
      const listed = diagnostics.find((d) => d.type === "listed");
      expect(listed, "one list").to.not.equal(undefined);
      expect(listed!.type === "listed" && listed!.pages).to.be.at.least(3);
      expect(informer.lastResourceVersion).to.match(/^\d+$/);
    });

    it("with a namespace, sees only that namespace", async () => {
      const node = uniqueNode();
      const [ns1, ns2] = [await cp.newNamespace("inf"), await cp.newNamespace("inf")];
      await create(ns1, "a", node);
      await create(ns2, "b", node);
      const { informer, saw } = track({ node, namespace: ns1 });
      await informer.start();
      expect(informer.list().map((s) => s.metadata.name)).to.deep.equal(["a"]);
      await create(ns2, "c", node);
      await create(ns1, "d", node);
      await waitFor("d added", () => saw(`${ns1}/d`, "added"), 10_000, 20);
      expect(informer.get(ns2, "c")).to.equal(undefined);
    });
  });

  describe("watch events", () => {
    it("added, modified and deleted arrive for this node's snapshots and never for another's", async () => {
      const node = uniqueNode();
      const ns = await cp.newNamespace("inf");
      const { informer, changes, saw } = track({ node });
      await informer.start();
      await create(ns, "mine", node);
      await create(ns, "theirs", "hv-elsewhere");
      await waitFor("added", () => saw(`${ns}/mine`, "added"), 10_000, 20);
      await label(ns, "mine", "yes");
      await waitFor("modified", () => saw(`${ns}/mine`, "modified"), 10_000, 20);
      expect(informer.get(ns, "mine")?.metadata.labels?.touched).to.equal("yes");
      await remove(ns, "mine");
      await waitFor("deleted", () => saw(`${ns}/mine`, "deleted"), 10_000, 20);
      expect(informer.get(ns, "mine")).to.equal(undefined);
      expect(changes.filter(([key]) => key === `${ns}/theirs`)).to.deep.equal([]);
    });

    it("an event advances lastResourceVersion to the object's version", async () => {
      const node = uniqueNode();
      const ns = await cp.newNamespace("inf");
      const { informer, saw } = track({ node });
      await informer.start();
      const before = BigInt(informer.lastResourceVersion);
      await create(ns, "x", node);
      await waitFor("added", () => saw(`${ns}/x`, "added"), 10_000, 20);
      expect(BigInt(informer.lastResourceVersion) > before).to.equal(true);
      expect(informer.lastResourceVersion).to.equal(
        informer.get(ns, "x")?.metadata.resourceVersion,
      );
    });

    it("a bookmark advances lastResourceVersion past changes this node never sees", async () => {
      const node = uniqueNode();
      const ns = await cp.newNamespace("inf");
      // kube-apiserver sends a bookmark just before a watch times out; a short timeout makes one
      // arrive within seconds instead of the ~2 minutes a long watch waits for its first.
      const { informer, changes, count } = track({ node, watchTimeoutSeconds: 3 });
      await informer.start();
      const other = (await create(ns, "elsewhere", "hv-elsewhere")) as {
        metadata: { resourceVersion: string };
      };
      const otherRv = BigInt(other.metadata.resourceVersion);
      await waitFor(
        "a resourceVersion at or past the other node's change",
        () => BigInt(informer.lastResourceVersion) >= otherRv,
        20_000,
        20,
      );
      expect(changes, "no event reached us").to.deep.equal([]);
      expect(count("listed"), "and no relist").to.equal(1);
    });

    it("resync re-announces every cached key", async () => {
      const node = uniqueNode();
      const ns = await cp.newNamespace("inf");
      await create(ns, "a", node);
      await create(ns, "b", node);
      const { informer, changes } = track({ node, resyncMs: 300 });
      await informer.start();
      const resynced = (key: string) =>
        changes.filter(([k, kind]) => k === key && kind === "resync").length;
      await waitFor(
        "two resyncs of each key",
        () => resynced(`${ns}/a`) >= 2 && resynced(`${ns}/b`) >= 2,
        10_000,
        20,
      );
    });
  });

  describe("recovery", () => {
    it("reconnects after kube-apiserver restarts and sees what changed after the restart", async () => {
      const node = uniqueNode();
      const ns = await cp.newNamespace("inf");
      await create(ns, "before", node);
      const { informer, saw, count } = track({ node, backoff: { maxMs: 2_000 } });
      await informer.start();
      const watchesBefore = count("watch-started");

      await cp.restartApiserver();
      await create(ns, "after", node);
      await label(ns, "before", "after-restart");

      await waitFor(
        "the object created after the restart",
        () => saw(`${ns}/after`, "added"),
        60_000,
        50,
      );
      await waitFor(
        "the change made after the restart",
        () => saw(`${ns}/before`, "modified"),
        60_000,
        50,
      );
      expect(count("watch-ended"), "the old stream ended").to.be.at.least(1);
      expect(count("watch-started")).to.be.greaterThan(watchesBefore);
      expect(informer.get(ns, "before")?.metadata.labels?.touched).to.equal("after-restart");
    });

    it("a stream that goes silent (connection blackholed, no bookmarks) is restarted by the watchdog", async () => {
      const node = uniqueNode();
      const ns = await cp.newNamespace("inf");
      const proxy = await startStallProxy(cp.server);
      proxies.push(proxy);
      const { informer, saw, count, diagnostics } = track({
        node,
        kubeConfig: throughProxy(cp.kubeConfig(), proxy.url),
        watchdogMs: 2_000,
        allowWatchBookmarks: false,
      });
      await informer.start();
      // One connection for the list, one for the watch (client-node opens one per request).
      await waitFor("the watch connection", () => proxy.connections >= 2, 10_000, 20);
      await new Promise((resolve) => setTimeout(resolve, 300)); // its request is on the wire
      proxy.stallOpenConnections();
      let watchdogFiringsOnArrival: number | undefined;
      informer.onChange((key) => {
        if (key === `${ns}/during-stall`)
          watchdogFiringsOnArrival ??= count("watch-ended", "watchdog");
      });
      await createDuringStall(ns, node, saw);
      expect(
        watchdogFiringsOnArrival,
        "it arrived only after the watchdog ended the stream",
      ).to.equal(1);
      const silent = diagnostics.find((d) => d.type === "watch-ended" && d.reason === "watchdog");
      expect(silent?.type === "watch-ended" && silent.durationMs).to.be.at.least(1_990);
      expect(count("watch-ended", "error"), "nothing else noticed the dead stream").to.equal(0);
    });

    it("on the controller's one shared HTTP/2 connection, a silent stream drops it and the informer reconnects afresh", async () => {
      const node = uniqueNode();
      const ns = await cp.newNamespace("inf");
      const proxy = await startStallProxy(cp.server);
      proxies.push(proxy);
      const shared = throughProxy(cp.kubeConfig(), proxy.url, new ConnectionReusingKubeConfig());
      let dropped = 0;
      const { informer, saw, count } = track({
        node,
        kubeConfig: shared,
        watchdogMs: 2_000,
        allowWatchBookmarks: false,
        onConnectionSuspect: () => {
          dropped++;
          shared.dropConnections();
        },
      });
      try {
        await informer.start();
        await new Promise((resolve) => setTimeout(resolve, 300)); // the watch is on the wire
        expect(proxy.connections, "the list and the watch share one connection").to.equal(1);
        proxy.stallOpenConnections();
        await createDuringStall(ns, node, saw);
        expect(count("watch-ended", "watchdog")).to.equal(1);
        expect(dropped).to.equal(1);
        expect(proxy.connections, "one fresh connection after the drop").to.equal(2);
      } finally {
        await informer.stop();
        await shared.closeConnections();
      }
    });

    it("a watch from a resourceVersion the apiserver no longer has (410) relists and carries on", async () => {
      const node = uniqueNode();
      const ns = await cp.newNamespace("inf");
      await create(ns, "a", node);
      const real = clientNodeWatchFactory(cp.kubeConfig(), 60_000);
      let first = true;
      const { informer, saw, count } = track({
        node,
        // The first watch asks for resourceVersion 1, long compacted away: a genuine 410 Expired.
        watchFactory: (path, query, onEvent, onDone) => {
          const q = first ? { ...query, resourceVersion: "1" } : query;
          first = false;
          return real(path, q, onEvent, onDone);
        },
      });
      await informer.start();
      await waitFor("a relist", () => count("listed") === 2, 20_000, 20);
      expect(count("watch-ended", "expired")).to.equal(1);
      await create(ns, "b", node);
      await waitFor("b added after the relist", () => saw(`${ns}/b`, "added"), 10_000, 20);
    });
  });
});

/** The same credentials, pointed at `server` (loaded into `proxied`). */
function throughProxy<T extends KubeConfig>(kc: KubeConfig, server: string, proxied: T): T;
function throughProxy(kc: KubeConfig, server: string): KubeConfig;
function throughProxy(kc: KubeConfig, server: string, proxied = new KubeConfig()): KubeConfig {
  proxied.loadFromOptions({
    clusters: kc.clusters.map((c) => ({ ...c, server })),
    users: kc.users,
    contexts: kc.contexts,
    currentContext: kc.currentContext,
  });
  return proxied;
}
