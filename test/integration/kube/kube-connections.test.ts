// The controller's KubeConfig against the real API server: every request of client-node 2.0.x
// used to open its own TLS connection; through ConnectionReusingKubeConfig they share one (an
// HTTP/2 connection that carries a watch too), renewed once it is old.
// Connections are counted with undici's own diagnostics channel, which fires once per socket.
import { subscribe, unsubscribe } from "node:diagnostics_channel";
import { expect } from "chai";
import { CoreV1Api, KubeConfig, Watch } from "@kubernetes/client-node";
import { ConnectionReusingKubeConfig } from "../../../src/kube/kube-config.ts";
import { getControlPlane, type ControlPlane } from "../../support/kube/control-plane.ts";

const CONNECTED = "undici:client:connected";

describe("API connections through ConnectionReusingKubeConfig (real kube-apiserver)", function () {
  this.timeout(60_000);
  let cp: ControlPlane;
  let namespace: string;
  let connections = 0;
  const protocols = new Set<string>();
  const onConnected = (message: unknown) => {
    connections++;
    const socket = (message as { socket?: { alpnProtocol?: string | false } }).socket;
    protocols.add(String(socket?.alpnProtocol));
  };

  before(async function () {
    this.timeout(600_000);
    cp = await getControlPlane();
    namespace = await cp.newNamespace("conn");
    subscribe(CONNECTED, onConnected);
  });
  after(() => unsubscribe(CONNECTED, onConnected));

  async function connectionsFor(kc: KubeConfig, requests: number): Promise<number> {
    const api = kc.makeApiClient(CoreV1Api);
    const before = connections;
    for (let i = 0; i < requests; i++) await api.readNamespace({ name: namespace });
    return connections - before;
  }

  it("client-node's own KubeConfig opens a connection per request (the cost this removes)", async () => {
    const plain = new KubeConfig();
    plain.loadFromFile(cp.kubeconfigPath);
    expect(await connectionsFor(plain, 10)).to.equal(10);
  });

  it("ten sequential requests share one connection", async () => {
    const kc = new ConnectionReusingKubeConfig();
    kc.loadFromFile(cp.kubeconfigPath);
    try {
      expect(await connectionsFor(kc, 10)).to.equal(1);
    } finally {
      await kc.closeConnections();
    }
  });

  it("a watch and concurrent requests share that one connection (HTTP/2, negotiated by ALPN)", async () => {
    const kc = new ConnectionReusingKubeConfig();
    kc.loadFromFile(cp.kubeconfigPath);
    const before = connections;
    protocols.clear();
    const seen: string[] = [];
    const watch = await new Watch(kc).watch(
      `/api/v1/namespaces/${namespace}/configmaps`,
      {},
      (type, obj: { metadata?: { name?: string } }) => seen.push(`${type} ${obj.metadata?.name}`),
      () => undefined,
    );
    try {
      const api = kc.makeApiClient(CoreV1Api);
      await Promise.all(
        [1, 2, 3].map((i) =>
          api.createNamespacedConfigMap({ namespace, body: { metadata: { name: `cm-${i}` } } }),
        ),
      );
      for (let i = 0; i < 10; i++) await api.readNamespace({ name: namespace });
      const deadline = Date.now() + 10_000;
      while (seen.length < 3 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
      expect(seen.sort()).to.deep.equal(["ADDED cm-1", "ADDED cm-2", "ADDED cm-3"]);
      // undici 8 offers h2 and the API server takes it: one connection multiplexes them all.
      expect(connections - before).to.equal(1);
      expect([...protocols]).to.deep.equal(["h2"]);
    } finally {
      watch.abort();
      await kc.closeConnections();
    }
  });

  it("renews the shared connection once it is older than renewAfterMs", async () => {
    let now = 0;
    const kc = new ConnectionReusingKubeConfig({ renewAfterMs: 1_000, now: () => now });
    kc.loadFromFile(cp.kubeconfigPath);
    try {
      expect(await connectionsFor(kc, 3)).to.equal(1);
      now += 999;
      expect(await connectionsFor(kc, 3)).to.equal(0);
      now += 1;
      expect(await connectionsFor(kc, 3)).to.equal(1);
    } finally {
      await kc.closeConnections();
    }
  });
});
