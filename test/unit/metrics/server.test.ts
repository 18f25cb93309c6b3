// The HTTP endpoint the kubelet probes and Prometheus scrapes, on a kernel-chosen loopback port.
import { expect } from "chai";
import { request } from "node:http";
import { createMetrics } from "../../../src/metrics/index.ts";
import { MetricsServer, type ReadinessCheck } from "../../../src/metrics/server.ts";

interface Answer {
  status: number;
  contentType: string | undefined;
  body: string;
}

function call(port: number, path: string, method = "GET"): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = request({ host: "127.0.0.1", port, path, method, agent: false }, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (chunk: string) => (body += chunk));
      res.on("end", () =>
        resolve({ status: res.statusCode ?? 0, contentType: res.headers["content-type"], body }),
      );
    });
    req.on("error", reject);
    req.end();
  });
}

describe("metrics server", () => {
  let server: MetricsServer | undefined;
  afterEach(async () => {
    await server?.close();
    server = undefined;
  });

  async function serve(ready: ReadinessCheck, readinessTimeoutMs?: number) {
    const metrics = createMetrics(undefined, { defaultMetrics: false });
    server = new MetricsServer({ registry: metrics.registry, ready, readinessTimeoutMs });
    const { port } = await server.start("127.0.0.1", 0);
    return { metrics, port };
  }

  it("serves the registry in the Prometheus text format on /metrics", async () => {
    const { metrics, port } = await serve(() => true);
    metrics.forController("vmsnapshot", 2).reconciled("success");
    const answer = await call(port, "/metrics");
    expect(answer.status).to.equal(200);
    expect(answer.contentType).to.equal(metrics.registry.contentType);
    expect(answer.body).to.match(
      /^controller_runtime_reconcile_total\{controller="vmsnapshot",result="success"\} 1$/m,
    );
    expect(answer.body).to.match(/^# TYPE vmsnap_guest_frozen_seconds histogram$/m);
  });

  it("answers liveness on /healthz even while not ready", async () => {
    const { port } = await serve(() => false);
    const answer = await call(port, "/healthz");
    expect(answer.status).to.equal(200);
  });

  it("answers readiness on /readyz from the caller's check, asked anew each time", async () => {
    let ready = false;
    const { port } = await serve(async () => ready);
    expect((await call(port, "/readyz")).status).to.equal(503);
    ready = true;
    expect((await call(port, "/readyz")).status).to.equal(200);
    ready = false;
    expect((await call(port, "/readyz")).status).to.equal(503);
  });

  it("is not ready when the check throws, and says why", async () => {
    const { port } = await serve(() => {
      throw new Error("informer cache not synced");
    });
    const answer = await call(port, "/readyz");
    expect(answer.status).to.equal(503);
    expect(answer.body).to.contain("informer cache not synced");
  });

  it("is not ready when the check hangs past its timeout", async () => {
    const { port } = await serve(() => new Promise<boolean>(() => {}), 50);
    const answer = await call(port, "/readyz");
    expect(answer.status).to.equal(503);
    expect(answer.body).to.contain("50 ms");
  });

  it("answers 404 for other paths and 405 for methods other than GET and HEAD", async () => {
    const { port } = await serve(() => true);
    expect((await call(port, "/nope")).status).to.equal(404);
    expect((await call(port, "/metrics", "POST")).status).to.equal(405);
    const head = await call(port, "/healthz", "HEAD");
    expect(head.status).to.equal(200);
    expect(head.body).to.equal("");
  });

  it("frees its port on close, so a restarted server can bind it again", async () => {
    const { port } = await serve(() => true);
    await server!.close();
    const refused = await call(port, "/healthz").then(
      () => undefined,
      (err: NodeJS.ErrnoException) => err.code,
    );
    expect(refused).to.equal("ECONNREFUSED");
    const again = new MetricsServer({ registry: createMetrics().registry, ready: () => true });
    server = again;
    await again.start("127.0.0.1", port);
    expect((await call(port, "/healthz")).status).to.equal(200);
  });

  it("rejects start when the port is taken", async () => {
    const { port } = await serve(() => true);
    const second = new MetricsServer({ registry: createMetrics().registry, ready: () => true });
    const failure = await second.start("127.0.0.1", port).then(
      () => undefined,
      (err: NodeJS.ErrnoException) => err.code,
    );
    expect(failure).to.equal("EADDRINUSE");
  });
});
