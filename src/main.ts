#!/usr/bin/env -S node --max-semi-space-size=1
// vmsnap-controller: the per-host agent. Wiring only: configuration, adapters, the thaw guard,
// the informer and work queue, the reconciler, metrics and signals. SIGTERM drains: no new
// freeze starts, in-flight snapshots finish or are undone, then the guard thaws what is left
// and exits.
import { ConfigError, parseConfig, USAGE, type AgentConfig } from "./config.ts";
import { Admission } from "./controller/admission.ts";
import { Controller, CONTROLLER_NAME } from "./controller/controller.ts";
import { SnapshotEffects } from "./controller/effects.ts";
import { SnapshotInformer } from "./controller/informer.ts";
import { MetricsObserver, timedBackend } from "./controller/observe.ts";
import { Reconciler } from "./controller/reconciler.ts";
import { ConnectionReusingKubeConfig } from "./controller/kube-config.ts";
import { KubeEventRecorder } from "./controller/recorder.ts";
import { KubeSnapshotClient } from "./controller/snapshot-client.ts";
import { WorkQueue } from "./controller/workqueue.ts";
import { reportUnfinishedWork, workqueueMetricsHooks } from "./controller/workqueue-metrics.ts";
import { ThawGuard, type ThawedReply } from "./guard/thaw-guard.ts";
import { Hypervisor } from "./hypervisor/connection.ts";
import { makePrivateFolder } from "./hypervisor/memory-folder.ts";
import { removeMemory, saveMemory } from "./hypervisor/memory-snapshot.ts";
import { NamespaceCap } from "./limits/namespace-cap.ts";
import { createLogger, type Logger } from "./log.ts";
import { createMetrics, MetricsServer, type VmsnapMetrics } from "./metrics/index.ts";
import { NoopBackend } from "./storage/noop.ts";
import { LibvirtFileBackend } from "./storage/libvirt-file/index.ts";
import { RbdBackend } from "./storage/rbd/index.ts";

async function run(config: AgentConfig, log: Logger): Promise<void> {
  const kubeConfig = new ConnectionReusingKubeConfig();
  if (config.kubeconfig) kubeConfig.loadFromFile(config.kubeconfig);
  else kubeConfig.loadFromCluster();
  const memoryFolder = await makePrivateFolder(config.memoryDir);
  if (memoryFolder.changed)
    log.info("made the memory folder private (0700)", {
      folder: memoryFolder.path,
      was: memoryFolder.previousMode?.toString(8),
    });

  const metrics = createMetrics();
  const hypervisor = await Hypervisor.open(config.libvirtUri, {
    callTimeoutMs: config.callTimeoutMs,
  });
  const guardEvents = {
    onThawed: (report: ThawedReply) => log.warn("the thaw guard fired", { ...report }),
    onGuardExit: (pid: number | undefined, how: string) =>
      log.error("lost the thaw guard; starting or reconnecting to another", { pid, how }),
  };
  // In a pod the guard is a sidecar: a guard spawned by a PID 1 controller would die with it.
  const guard = config.guardSocket
    ? await ThawGuard.connect({ socketPath: config.guardSocket, ...guardEvents })
    : await ThawGuard.start({ uri: config.libvirtUri, ...guardEvents });
  const admission = new Admission(config.maxFrozenGuests);
  const observer = new MetricsObserver(metrics);
  let draining = false;
  const effects = new SnapshotEffects({
    hypervisor,
    storage: storageBackends(config, hypervisor, metrics),
    memory: {
      save: (request) => saveMemory(hypervisor, request),
      remove: (request) => removeMemory(hypervisor, request),
    },
    guard,
    admission,
    memoryDir: config.memoryDir,
    callTimeoutMs: config.callTimeoutMs,
    isDraining: () => draining,
    log: (message, fields) => log.warn(message, fields),
    onError: (err) => observer.error(err),
    tenancy: {
      node: config.nodeName,
      unownedDomains: config.tenancy.unownedDomains,
      memoryReserveBytes: config.tenancy.memoryReserveBytes,
      ...(config.tenancy.maxSnapshotsPerNamespace > 0
        ? { namespaceCap: new NamespaceCap(config.tenancy.maxSnapshotsPerNamespace) }
        : {}),
    },
  });

  const informer = new SnapshotInformer({
    kubeConfig,
    node: config.nodeName,
    ...(config.namespace ? { namespace: config.namespace } : {}),
    onEvent: (diagnostic) => log.debug("informer", { ...diagnostic }),
    onConnectionSuspect: () => kubeConfig.dropConnections(),
  });
  const queueMetrics = metrics.forWorkqueue(CONTROLLER_NAME);
  const queue = new WorkQueue({ metrics: workqueueMetricsHooks(queueMetrics) });
  const stopSampling = reportUnfinishedWork(queue, queueMetrics);
  const events = new KubeEventRecorder(kubeConfig, config.nodeName, (m, f) => log.warn(m, f));
  const reconciler = new Reconciler({
    read: (key) => informer.getByKey(key),
    client: new KubeSnapshotClient(kubeConfig),
    effects,
    events,
    observer,
    log: (m, f) => log.warn(m, f),
  });
  const controller = new Controller({
    cache: informer,
    queue,
    reconciler,
    hypervisor,
    workers: config.workers,
    log,
    metrics: metrics.forController(CONTROLLER_NAME, config.workers),
    onDraining: () => {
      draining = true;
    },
    callTimeoutMs: config.callTimeoutMs,
  });

  const server = new MetricsServer({
    registry: metrics.registry,
    ready: () => controller.isReady(),
  });
  const address = await server.start(config.metricsHost, config.metricsPort);
  log.info("serving metrics", { address: `${address.address}:${address.port}` });
  await controller.start();

  await new Promise<void>((resolve) => {
    const shutdown = (signal: string) => {
      log.info("shutting down", { signal });
      resolve();
    };
    process.once("SIGTERM", () => shutdown("SIGTERM"));
    process.once("SIGINT", () => shutdown("SIGINT"));
  });
  await controller.stop();
  await events.flush();
  stopSampling();
  await guard.close();
  await server.close();
  await hypervisor.close();
  await kubeConfig.closeConnections();
}

function storageBackends(config: AgentConfig, hypervisor: Hypervisor, metrics: VmsnapMetrics) {
  if (config.benchStorage === "noop") {
    return { rbd: new NoopBackend("rbd"), file: new NoopBackend("libvirt-file") };
  }
  const rbd = new RbdBackend({
    config: {
      confPath: config.cephConf,
      clientId: config.cephId,
      keyringPath: config.cephKeyring,
      opTimeoutSeconds: config.cephOpTimeoutSeconds,
    },
    sequentialImageSnapshots: config.benchStorage === "sequential",
  });
  return {
    rbd: timedBackend(rbd, metrics),
    file: timedBackend(new LibvirtFileBackend({ hypervisor }), metrics),
  };
}

async function main(): Promise<void> {
  let config;
  try {
    config = parseConfig(process.argv.slice(2), process.env);
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`vmsnap-controller: ${err.message}\n`);
      process.exit(2);
    }
    throw err;
  }
  if (config === "help") {
    process.stdout.write(USAGE + "\n");
    return;
  }
  const log = createLogger(config.logLevel);
  try {
    await run(config, log);
    // Abandoned libvirt calls (hung past their deadline) would keep the process alive.
    process.exit(0);
  } catch (err) {
    log.error("fatal", { error: err instanceof Error ? (err.stack ?? err.message) : String(err) });
    process.exit(1);
  }
}

await main();
