// A TCP relay in front of kube-apiserver that can make the connections it carries go silent
// without closing them: the state a watch is in after a NAT entry expired or a firewall started
// dropping packets. TLS passes through untouched (the client still verifies the apiserver's
// certificate, issued for 127.0.0.1), so the client library cannot tell the relay is there.
import { createServer, connect, type Server, type Socket } from "node:net";

export interface StallProxy {
  /** `https://127.0.0.1:<port>`: use it in place of the apiserver's address. */
  readonly url: string;
  /** Connections opened so far. */
  readonly connections: number;
  /** From now on, bytes on every open connection are dropped in both directions. New
   *  connections are relayed normally. */
  stallOpenConnections(): void;
  close(): Promise<void>;
}

export async function startStallProxy(upstream: string): Promise<StallProxy> {
  const target = new URL(upstream);
  const pairs = new Set<{ client: Socket; server: Socket; stalled: boolean }>();
  let opened = 0;
  const server: Server = createServer((client) => {
    opened += 1;
    const upstreamSocket = connect(Number(target.port), target.hostname);
    const pair = { client, server: upstreamSocket, stalled: false };
    pairs.add(pair);
    client.on("data", (chunk) => pair.stalled || upstreamSocket.write(chunk));
    upstreamSocket.on("data", (chunk) => pair.stalled || client.write(chunk));
    const close = () => {
      pairs.delete(pair);
      client.destroy();
      upstreamSocket.destroy();
    };
    client.on("close", close);
    upstreamSocket.on("close", close);
    client.on("error", close);
    upstreamSocket.on("error", close);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const address = server.address();
  if (address === null || typeof address === "string") throw new Error("proxy has no port");
  return {
    url: `https://127.0.0.1:${address.port}`,
    get connections() {
      return opened;
    },
    stallOpenConnections() {
      for (const pair of pairs) pair.stalled = true;
    },
    async close() {
      for (const pair of pairs) {
        pair.client.destroy();
        pair.server.destroy();
      }
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
