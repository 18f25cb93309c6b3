// The informer's recovery paths with a scripted API server: relist on 410 Gone, resume from the
// newest resourceVersion (bookmarks too), the backoff between attempts, the watchdog, paging,
// and the cache contract (frozen objects, no managed fields). Reconnecting to a real restarted
// kube-apiserver is tested in test/integration/kube/informer.test.ts.
import { KubeConfig } from "@kubernetes/client-node";
import { expect } from "chai";
import { snapshotsOnNode, vmsnapshots, type VMSnapshot } from "../../../src/api/types.ts";
import {
  Informer,
  type ChangeKind,
  type InformerDiagnostic,
  type InformerOptions,
} from "../../../src/kube/informer.ts";
import { eventually, FakeWatches, page, ScriptedLister, snapshot, status } from "./fake-watch.ts";

describe("Informer (scripted API server)", () => {
  let watches: FakeWatches;
  let informer: Informer<VMSnapshot> | undefined;
  let changes: Array<[string, ChangeKind]>;
  let diagnostics: InformerDiagnostic[];

  beforeEach(() => {
    watches = new FakeWatches();
    changes = [];
    diagnostics = [];
  });

  afterEach(async () => {
    await informer?.stop();
    informer = undefined;
  });

  function makeInformer(
    lister: ScriptedLister,
    options: Partial<InformerOptions> = {},
  ): Informer<VMSnapshot> {
    informer = new Informer<VMSnapshot>({
      kubeConfig: new KubeConfig(),
      resource: vmsnapshots,
      fieldSelector: snapshotsOnNode("hv-1"),
      watchFactory: watches.factory,
      lister: lister.lister,
      backoff: { initialMs: 1, maxMs: 8, jitter: 0 },
      resyncMs: 0,
      onEvent: (d) => diagnostics.push(d),
      ...options,
    });
    informer.onChange((key, kind) => changes.push([key, kind]));
    return informer;
  }

  const ended = (reason: string) =>
    diagnostics.filter((d) => d.type === "watch-ended" && d.reason === reason).length;

  describe("start", () => {
    it("resolves only once the first list is in the cache, retrying a failed list", async () => {
      let answerList: (() => void) | undefined;
      const lister = new ScriptedLister(
        () => Promise.reject(new Error("connection refused")),
        () =>
          new Promise((resolve) => {
            answerList = () => resolve(page("10", [snapshot("ns", "a", "9")]));
          }),
      );
      const started = makeInformer(lister).start();
      let resolved = false;
      void started.then(() => (resolved = true));
      await eventually(() => answerList !== undefined, "the second list request");
      expect(resolved).to.equal(false);
      expect(informer!.hasSynced()).to.equal(false);
      answerList!();
      await started;
      expect(informer!.hasSynced()).to.equal(true);
      expect(informer!.get("ns", "a")?.metadata.resourceVersion).to.equal("9");
      expect(diagnostics.filter((d) => d.type === "list-failed")).to.have.length(1);
      expect(changes).to.deep.equal([["ns/a", "added"]]);
    });

    it("rejects when stopped before the first list completed", async () => {
      const started = makeInformer(new ScriptedLister()).start();
      await informer!.stop();
      let error: unknown;
      await started.catch((e: unknown) => (error = e));
      expect(String(error)).to.match(/stopped before its first list/);
    });

    it("lists and watches with the node's field selector, bookmarks and a jittered timeout", async () => {
      const lister = new ScriptedLister(() => page("10", []));
      await makeInformer(lister, { namespace: "team-a", watchTimeoutSeconds: 100 }).start();
      const stream = await watches.nth(0);
      expect(lister.requests[0]).to.deep.include({ fieldSelector: "spec.source.node=hv-1" });
      expect(stream.path).to.equal("/apis/vmsnap.io/v1alpha1/namespaces/team-a/vmsnapshots");
      expect(stream.query).to.deep.include({
        fieldSelector: "spec.source.node=hv-1",
        resourceVersion: "10",
        allowWatchBookmarks: true,
      });
      expect(stream.query.timeoutSeconds).to.be.within(100, 200);
    });
  });

  describe("410 Gone", () => {
    it("an ERROR event with 410 relists, announcing what changed while away, then watches from the new list", async () => {
      const lister = new ScriptedLister(
        () => page("10", [snapshot("ns", "a", "5"), snapshot("ns", "b", "6")]),
        () => page("20", [snapshot("ns", "a", "11"), snapshot("ns", "c", "19")]),
      );
      await makeInformer(lister).start();
      const first = await watches.nth(0);
      first.emit("MODIFIED", snapshot("ns", "a", "11"));
      first.emit("ERROR", status(410, "Expired"));
      const second = await watches.nth(1);
      expect(first.aborted, "our side of the stream is closed too").to.equal(true);
      expect(second.query.resourceVersion).to.equal("20");
      expect(lister.requests).to.have.length(2);
      expect(changes).to.deep.equal([
        ["ns/a", "added"],
        ["ns/b", "added"],
        ["ns/a", "modified"],
        ["ns/c", "added"],
        ["ns/b", "deleted"],
      ]);
      expect(
        informer!
          .list()
          .map((s) => s.metadata.name)
          .sort(),
      ).to.deep.equal(["a", "c"]);
      expect(informer!.lastResourceVersion).to.equal("20");
      expect(ended("expired")).to.equal(1);
    });

    it("a relist keeps serving every object while it runs and deletes only once complete", async () => {
      let releaseLastPage: (() => void) | undefined;
      const lister = new ScriptedLister(
        () => page("10", [snapshot("ns", "a", "5"), snapshot("ns", "b", "6")]),
        () => page("20", [snapshot("ns", "a", "15")], "next"),
        () =>
          new Promise((resolve) => {
            releaseLastPage = () => resolve(page("20", [snapshot("ns", "c", "18")]));
          }),
      );
      await makeInformer(lister).start();
      (await watches.nth(0)).emit("ERROR", status(410, "Expired"));
      await eventually(() => releaseLastPage !== undefined, "the relist's last page requested");
      expect(informer!.get("ns", "a")?.metadata.resourceVersion, "page 1 applied").to.equal("15");
      expect(informer!.get("ns", "b"), "not deleted before the list is complete").to.not.equal(
        undefined,
      );
      expect(informer!.hasSynced()).to.equal(true);
      releaseLastPage!();
      await watches.nth(1);
      expect(informer!.get("ns", "b")).to.equal(undefined);
      expect(informer!.get("ns", "c")?.metadata.resourceVersion).to.equal("18");
    });

    it("a watch request refused with HTTP 410 relists too", async () => {
      const lister = new ScriptedLister(
        () => page("10", []),
        () => page("30", [snapshot("ns", "a", "25")]),
      );
      await makeInformer(lister).start();
      (await watches.nth(0)).end(Object.assign(new Error("Gone"), { statusCode: 410 }));
      expect((await watches.nth(1)).query.resourceVersion).to.equal("30");
      expect(changes).to.deep.equal([["ns/a", "added"]]);
    });

    it("an ERROR event other than 410 resumes the watch without relisting", async () => {
      const lister = new ScriptedLister(() => page("10", []));
      await makeInformer(lister).start();
      const first = await watches.nth(0);
      first.emit("ADDED", snapshot("ns", "a", "12"));
      first.emit("ERROR", status(500, "InternalError"));
      expect((await watches.nth(1)).query.resourceVersion).to.equal("12");
      expect(lister.requests).to.have.length(1);
      expect(ended("error")).to.equal(1);
    });

    it("a continue token that expired mid-list restarts the list from the first page", async () => {
      const lister = new ScriptedLister(
        () => page("10", [snapshot("ns", "a", "5")], "token-1"),
        () => Promise.reject(Object.assign(new Error("Expired"), { code: 410 })),
        () => page("40", [snapshot("ns", "b", "33")], "token-2"),
        () => page("40", [snapshot("ns", "c", "34")]),
      );
      await makeInformer(lister, { pageSize: 1 }).start();
      expect(lister.requests.map((r) => [r.limit, r.continueToken])).to.deep.equal([
        [1, undefined],
        [1, "token-1"],
        [1, undefined],
        [1, "token-2"],
      ]);
      expect(
        informer!
          .list()
          .map((s) => s.metadata.name)
          .sort(),
      ).to.deep.equal(["b", "c"]);
      expect(changes, "a, from the abandoned snapshot, is gone from the new one").to.deep.equal([
        ["ns/a", "added"],
        ["ns/b", "added"],
        ["ns/c", "added"],
        ["ns/a", "deleted"],
      ]);
      expect(informer!.lastResourceVersion).to.equal("40");
    });
  });

  describe("reconnecting", () => {
    it("resumes from the newest resourceVersion, a bookmark's included, without relisting", async () => {
      const lister = new ScriptedLister(() => page("10", []));
      await makeInformer(lister).start();
      const first = await watches.nth(0);
      first.emit("ADDED", snapshot("ns", "a", "12"));
      first.emit("BOOKMARK", { kind: "VMSnapshot", metadata: { resourceVersion: "15" } });
      expect(informer!.lastResourceVersion).to.equal("15");
      first.end(new Error("read ECONNRESET"));
      expect((await watches.nth(1)).query.resourceVersion).to.equal("15");
      expect(lister.requests).to.have.length(1);
      expect(changes, "a bookmark is not a change").to.deep.equal([["ns/a", "added"]]);
    });

    it("backs off exponentially while streams fail at once, and starts over after a healthy one", async () => {
      const lister = new ScriptedLister(() => page("10", []));
      await makeInformer(lister).start();
      for (let i = 0; i < 4; i++) (await watches.nth(i)).end(new Error("ECONNREFUSED"));
      const healthy = await watches.nth(4);
      healthy.emit("ADDED", snapshot("ns", "a", "12"));
      healthy.end(null);
      (await watches.nth(5)).end(new Error("ECONNREFUSED"));
      await watches.nth(6);
      const delays = diagnostics.flatMap((d) => (d.type === "backoff" ? [d.delayMs] : []));
      expect(delays).to.deep.equal([1, 2, 4, 8, 1, 2]);
    });

    it("a watch that stays silent is restarted by the watchdog", async () => {
      const lister = new ScriptedLister(() => page("10", []));
      await makeInformer(lister, { watchdogMs: 60 }).start();
      const silent = await watches.nth(0);
      const next = await watches.nth(1, 1_000);
      expect(silent.aborted).to.equal(true);
      expect(ended("watchdog")).to.equal(1);
      expect(next.query.resourceVersion).to.equal("10");
    });

    it("a watch that never gets its response headers is abandoned after the connect timeout", async () => {
      const lister = new ScriptedLister(() => page("10", []));
      let attempts = 0;
      await makeInformer(lister, {
        watchdogMs: 60_000,
        connectTimeoutMs: 50,
        // The first connection hangs before any response; the next one connects.
        watchFactory: (path, query, onEvent, onDone) =>
          ++attempts === 1 ? new Promise(() => {}) : watches.factory(path, query, onEvent, onDone),
      }).start();
      const connected = await watches.nth(0, 1_000);
      expect(attempts).to.equal(2);
      expect(ended("watchdog")).to.equal(1);
      expect(connected.query.resourceVersion).to.equal("10");
    });

    it("an open stream is given the silence limit, not the connect timeout", async () => {
      const lister = new ScriptedLister(() => page("10", []));
      await makeInformer(lister, { watchdogMs: 800, connectTimeoutMs: 50 }).start();
      await watches.nth(0);
      await new Promise((resolve) => setTimeout(resolve, 200));
      expect(ended("watchdog")).to.equal(0);
      await watches.nth(1, 1_000);
      expect(ended("watchdog")).to.equal(1);
    });

    it("events and bookmarks keep the watchdog from firing", async () => {
      const lister = new ScriptedLister(() => page("10", []));
      await makeInformer(lister, { watchdogMs: 400 }).start();
      const stream = await watches.nth(0);
      for (let i = 0; i < 6; i++) {
        await new Promise((resolve) => setTimeout(resolve, 100));
        stream.emit("BOOKMARK", { metadata: { resourceVersion: String(11 + i) } });
      }
      expect(ended("watchdog")).to.equal(0);
      expect(watches.streams).to.have.length(1);
    });

    it("stop ends the stream and the loop; no stream is opened afterwards", async () => {
      const lister = new ScriptedLister(() => page("10", []));
      await makeInformer(lister).start();
      const stream = await watches.nth(0);
      await informer!.stop();
      expect(stream.aborted).to.equal(true);
      await new Promise((resolve) => setTimeout(resolve, 30));
      expect(watches.streams).to.have.length(1);
    });
  });

  describe("the cache", () => {
    it("holds frozen objects without managed fields or kubectl's last-applied copy", async () => {
      const applied = snapshot("ns", "a", "5") as { metadata: Record<string, unknown> };
      applied.metadata.annotations = {
        "kubectl.kubernetes.io/last-applied-configuration": "{...}",
        team: "db",
      };
      const lister = new ScriptedLister(() => page("10", [applied]));
      await makeInformer(lister).start();
      const cached = informer!.get("ns", "a")!;
      expect(cached.metadata.managedFields).to.equal(undefined);
      expect(cached.metadata.annotations).to.deep.equal({ team: "db" });
      expect(() => {
        (cached.spec.source as { node: string }).node = "hv-2";
      }).to.throw(TypeError);
      expect(Object.isFrozen(cached.metadata)).to.equal(true);
      expect(informer!.getByKey("ns/a")).to.equal(cached);
    });

    it("announces a deletion and forgets the object", async () => {
      const lister = new ScriptedLister(() => page("10", [snapshot("ns", "a", "5")]));
      await makeInformer(lister).start();
      (await watches.nth(0)).emit("DELETED", snapshot("ns", "a", "12"));
      expect(informer!.get("ns", "a")).to.equal(undefined);
      expect(changes.at(-1)).to.deep.equal(["ns/a", "deleted"]);
    });

    it("does not announce an event carrying the version it already has", async () => {
      const lister = new ScriptedLister(() => page("10", [snapshot("ns", "a", "5")]));
      await makeInformer(lister).start();
      (await watches.nth(0)).emit("MODIFIED", snapshot("ns", "a", "5"));
      expect(changes).to.deep.equal([["ns/a", "added"]]);
    });

    it("a handler that throws is reported and does not stop the others", async () => {
      const lister = new ScriptedLister(() => page("10", [snapshot("ns", "a", "5")]));
      const inf = makeInformer(lister);
      const seen: string[] = [];
      inf.onChange(() => {
        throw new Error("boom");
      });
      inf.onChange((key) => seen.push(key));
      await inf.start();
      expect(seen).to.deep.equal(["ns/a"]);
      expect(diagnostics.some((d) => d.type === "handler-failed")).to.equal(true);
    });

    it("resync re-announces every cached key periodically", async () => {
      const lister = new ScriptedLister(() =>
        page("10", [snapshot("ns", "a", "5"), snapshot("ns", "b", "6")]),
      );
      await makeInformer(lister, { resyncMs: 50 }).start();
      await eventually(
        () => changes.filter(([, kind]) => kind === "resync").length >= 4,
        "two resyncs",
      );
      const resynced = changes.filter(([, kind]) => kind === "resync").map(([key]) => key);
      expect(resynced.slice(0, 4)).to.deep.equal(["ns/a", "ns/b", "ns/a", "ns/b"]);
    });
  });
});
