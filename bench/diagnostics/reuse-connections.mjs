// Diagnostic only, never used for the published numbers: preloaded into the controller process
// (`node --import`) by `bench/throughput.ts --diagnose-reused-connections`, it makes
// @kubernetes/client-node 2.0.1 keep one undici dispatcher per KubeConfig instead of building a
// new one (a new TCP+TLS connection) for every request, so the gain of that fix can be measured
// without changing the controller.
import { KubeConfig } from "@kubernetes/client-node";

const original = KubeConfig.prototype.createDispatcher;
const dispatchers = new WeakMap();
KubeConfig.prototype.createDispatcher = function (cluster, options) {
  if (!dispatchers.has(this)) dispatchers.set(this, original.call(this, cluster, options));
  return dispatchers.get(this);
};
