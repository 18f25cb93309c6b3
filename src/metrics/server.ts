// The agent's one HTTP endpoint: `/metrics` for Prometheus, `/healthz` for the kubelet's liveness
// probe and `/readyz` for its readiness probe. Plain node:http, because three read-only routes
// need no framework. Liveness only proves the event loop answers (restarting a pod whose informer
// is merely catching up would make things worse); readiness asks the caller, who knows whether the
// cache is synced and frozen guests from an earlier instance have been thawed.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import type { Registry } from "prom-client";

/** True when the agent should receive traffic; throwing or timing out counts as not ready. */
export type ReadinessCheck = () => boolean | Promise<boolean>;

export interface MetricsServerOptions {
  registry: Registry;
  ready: ReadinessCheck;
  /** A readiness check slower than this answers 503, so a hung check cannot hang the probe. */
  readinessTimeoutMs?: number;
}

export class MetricsServer {
  readonly #options: MetricsServerOptions;
  readonly #server: Server;

  constructor(options: MetricsServerOptions) {
    this.#options = options;
    this.#server = createServer((req, res) => {
      this.#handle(req, res).catch((err: unknown) => reply(res, 500, `error: ${String(err)}\n`));
    });
  }

  /** Listens on `host:port` (port 0 picks a free one) and resolves to the bound address. */
  async start(host: string, port: number): Promise<AddressInfo> {
    await new Promise<void>((resolve, reject) => {
      this.#server.once("error", reject);
      this.#server.listen(port, host, () => {
        this.#server.off("error", reject);
        resolve();
      });
    });
    return this.#server.address() as AddressInfo;
  }

  /** Stops listening and drops idle keep-alive connections, so shutdown is not held up by them. */
  async close(): Promise<void> {
    if (!this.#server.listening) return;
    const closed = new Promise<void>((resolve, reject) =>
      this.#server.close((err) => (err ? reject(err) : resolve())),
    );
    this.#server.closeIdleConnections();
    await closed;
  }

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    if (req.method !== "GET" && req.method !== "HEAD") {
      res.setHeader("Allow", "GET, HEAD");
      return reply(res, 405, "method not allowed\n");
    }
    const path = new URL(req.url ?? "/", "http://localhost").pathname;
    switch (path) {
      case "/metrics": {
        const { registry } = this.#options;
        const body = await registry.metrics();
        res.setHeader("Content-Type", registry.contentType);
        return reply(res, 200, body);
      }
      case "/healthz":
        return reply(res, 200, "ok\n");
      case "/readyz": {
        const verdict = await this.#readiness();
        return verdict === true
          ? reply(res, 200, "ok\n")
          : reply(res, 503, `not ready: ${verdict}\n`);
      }
      default:
        return reply(res, 404, "not found\n");
    }
  }

  /** `true`, or why not. */
  async #readiness(): Promise<true | string> {
    const timeoutMs = this.#options.readinessTimeoutMs ?? 5_000;
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<string>((resolve) => {
      timer = setTimeout(() => resolve(`readiness check took over ${timeoutMs} ms`), timeoutMs);
    });
    const check = (async () => {
      try {
        return (await this.#options.ready()) ? true : "readiness check returned false";
      } catch (err) {
        return `readiness check failed: ${err instanceof Error ? err.message : String(err)}`;
      }
    })();
    try {
      return await Promise.race([check, timeout]);
    } finally {
      clearTimeout(timer);
    }
  }
}

function reply(res: ServerResponse, status: number, body: string): void {
  if (res.headersSent) return void res.end();
  res.statusCode = status;
  if (!res.hasHeader("Content-Type")) res.setHeader("Content-Type", "text/plain; charset=utf-8");
  res.end(body);
}
