// The per-host agent's wiring: adapters, the thaw guard, the informer and work queue, the
// reconciler, metrics and signals. SIGTERM drains: no new freeze starts, in-flight snapshots
// finish or are undone, then the guard thaws what is left and exits. src/main.ts runs it with
// the production storage backends; bench/lib/bench-main.ts with benchmark-only ones.
import { snapshotsOnNode, vmsnapshots, type VMSnapshot } from "./api/types.ts";
import {
  SCHEDULE_LABEL,
  schedulesOnNode,
  vmsnapshotschedules,
  type VMSnapshotSchedule,
} from "./api/schedule-types.ts";
import { ConfigError, parseConfig, USAGE, type AgentConfig } from "./config.ts";
import { Admission } from "./snapshot/admission.ts";
import { Controller } from "./controller/controller.ts";
import { SnapshotEffects } from "./snapshot/effects.ts";
import { snapshotKind } from "./snapshot/kind.ts";
import { MetricsObserver, timedBackend } from "./snapshot/observe.ts";
import { Reconciler } from "./controller/reconciler.ts";
import { Informer } from "./kube/informer.ts";
import type { KubeObject, ResourceDescriptor } from "./kube/resource.ts";
import { ConnectionReusingKubeConfig } from "./kube/kube-config.ts";
import { KubeEventRecorder } from "./kube/recorder.ts";
import { KubeObjectClient } from "./kube/object-client.ts";
import { reportUnfinishedWork, WorkQueue, workqueueMetricsHooks } from "./kube/workqueue.ts";
import { ThawGuard, type StateReply, type ThawedReply } from "./guard/thaw-guard.ts";
import { Hypervisor } from "./hypervisor/connection.ts";
import { makePrivateFolder } from "./hypervisor/memory-folder.ts";
import { removeMemory, saveMemory } from "./hypervisor/memory-snapshot.ts";
import {
  armBackgroundSnapshot,
  cancelBackgroundSnapshot,
  finishBackgroundSnapshot,
  prepareBackgroundSnapshot,
} from "./hypervisor/background-snapshot.ts";
import { NamespaceCap } from "./limits/namespace-cap.ts";
import { createLogger, type Logger } from "./log.ts";
import { createMetrics, MetricsServer, type VmsnapMetrics } from "./metrics/index.ts";
import { LibvirtFileBackend } from "./storage/libvirt-file/index.ts";
import { RbdBackend, type RbdConfig } from "./storage/rbd/index.ts";
import { StorageRegistry } from "./storage/registry.ts";
import { vmrestores, type VMRestore } from "./api/restore-types.ts";
import { RestoreEffects, type RestoreEffectsOptions } from "./restore/effects.ts";
import { restoreKind } from "./restore/kind.ts";
import { RestoreMetricsObserver } from "./restore/observe.ts";
import { ScheduleReconciler } from "./schedule/reconciler.ts";
import { RunOwners } from "./schedule/run-owners.ts";
import { settleLeftoversAtStart } from "./recovery/at-start.ts";
import { DEFAULT_THAW_POLICY } from "./hypervisor/thaw.ts";
import { monotonicNow } from "./clock.ts";

/** How long the start-up leftover thaw waits for the API server's lists. */
const LEFTOVER_LIST_TIMEOUT_MS = 20_000;

/** Builds the storage backends the effects snapshot disks with. */
export type StorageWiring = (
  config: AgentConfig,
  hypervisor: Hypervisor,
  metrics: VmsnapMetrics,
) => StorageRegistry;

/** Runs the agent until SIGTERM or SIGINT, then drains and closes everything. */
export async function runAgent(
  config: AgentConfig,
  log: Logger,
  storage: StorageWiring = storageBackends,
): Promise<void> {
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
  // First, before waiting for the guard (it may be down too): thaw what a previous process left.
  await settleLeftoversAtStart(hypervisor, {
    kubeConfig,
    node: config.nodeName,
    ...(config.namespace ? { namespace: config.namespace } : {}),
    listTimeoutMs: LEFTOVER_LIST_TIMEOUT_MS,
    policy: { ...DEFAULT_THAW_POLICY, callTimeoutMs: config.callTimeoutMs },
    now: monotonicNow,
    log: (message, fields) => log.warn(message, fields),
  });
  // The guard's reports reach the effects, which need the guard: bound once both exist.
  // eslint-disable-next-line prefer-const -- assigned below, after the guard it needs
  let effects: SnapshotEffects | undefined;
  const observer = new MetricsObserver(metrics);
  const guardEvents = {
    onThawed: (report: ThawedReply) => {
      log.warn("the thaw guard fired", { ...report });
      effects?.guardFired(report);
      observer.guardFired(report);
    },
    onState: (state: StateReply, pid: number | undefined) => metrics.guard.guardState(state, pid),
    onGuardExit: (pid: number | undefined, how: string) =>
      log.error("lost the thaw guard; starting or reconnecting to another", { pid, how }),
  };
  // In a pod the guard is a sidecar: a guard spawned by a PID 1 controller would die with it.
  const guard = config.guardSocket
    ? await ThawGuard.connect({ socketPath: config.guardSocket, ...guardEvents })
    : await ThawGuard.start({ uri: config.libvirtUri, ...guardEvents });
  const admission = new Admission(config.maxFrozenGuests);
  let draining = false;
  const backends = storage(config, hypervisor, metrics);
  effects = new SnapshotEffects({
    hypervisor,
    storage: backends,
    memory: {
      save: (request) => saveMemory(hypervisor, request),
      remove: (request) => removeMemory(hypervisor, request),
    },
    liveMemory: {
      prepare: (request) => prepareBackgroundSnapshot(hypervisor, request),
      arm: async (request) => {
        const armed = await armBackgroundSnapshot(hypervisor, request);
        log.debug("live memory armed", { domain: request.domain, ...armed.steps });
      },
      finish: (request) => finishBackgroundSnapshot(hypervisor, request),
      cancel: (domain, file) => cancelBackgroundSnapshot(hypervisor, domain, file),
    },
    guard,
    admission,
    memoryDir: config.memoryDir,
    callTimeoutMs: config.callTimeoutMs,
    isDraining: () => draining,
    log: (message, fields) => log.warn(message, fields),
    onError: (err) => observer.error(err),
    onThawConfirmed: (snapshot) => observer.thawConfirmed(snapshot),
    tenancy: {
      node: config.nodeName,
      unownedDomains: config.tenancy.unownedDomains,
      memoryReserveBytes: config.tenancy.memoryReserveBytes,
      ...(config.tenancy.maxSnapshotsPerNamespace > 0
        ? { namespaceCap: new NamespaceCap(config.tenancy.maxSnapshotsPerNamespace) }
        : {}),
    },
  });

  const informer = informerOf<VMSnapshot>(
    { config, kubeConfig, log },
    vmsnapshots,
    snapshotsOnNode(config.nodeName),
  );
  const kind = snapshotKind(effects);
  const queueMetrics = metrics.forWorkqueue(kind.name);
  const queue = new WorkQueue({ metrics: workqueueMetricsHooks(queueMetrics) });
  const stopSampling = reportUnfinishedWork(queue, queueMetrics);
  const events = new KubeEventRecorder(kubeConfig, config.nodeName, (m, f) => log.warn(m, f));
  const reconciler = new Reconciler({
    kind,
    read: (key) => informer.getByKey(key),
    client: new KubeObjectClient<VMSnapshot>(kubeConfig, vmsnapshots),
    events,
    observer,
    log: (m, f) => log.warn(m, f),
  });
  const controller = new Controller({
    kind,
    cache: informer,
    queue,
    reconciler,
    workers: config.workers,
    log,
    metrics: metrics.forController(kind.name, config.workers),
    onDraining: () => {
      draining = true;
    },
  });

  const restoreController = restoresController({
    config,
    kubeConfig,
    snapshots: informer,
    effects: {
      node: config.nodeName,
      hypervisor,
      storage: backends,
      guard,
      admission,
      callTimeoutMs: config.callTimeoutMs,
      tenancy: { unownedDomains: config.tenancy.unownedDomains },
      log: (message, fields) => log.warn(message, fields),
    },
    events,
    metrics,
    log,
  });

  const schedules = scheduleController({
    config,
    kubeConfig,
    snapshots: informer,
    events,
    metrics,
    log,
  });

  const server = new MetricsServer({
    registry: metrics.registry,
    ready: () => controller.isReady() && restoreController.isReady() && schedules.isReady(),
  });
  const address = await server.start(config.metricsHost, config.metricsPort);
  log.info("serving metrics", { address: `${address.address}:${address.port}` });
  await controller.start();
  await restoreController.start();
  // After the snapshot cache has synced: a schedule's decisions need its runs in view.
  await schedules.start();

  await new Promise<void>((resolve) => {
    const shutdown = (signal: string) => {
      log.info("shutting down", { signal });
      resolve();
    };
    process.once("SIGTERM", () => shutdown("SIGTERM"));
    process.once("SIGINT", () => shutdown("SIGINT"));
  });
  // Schedules first: no new run is created while the others drain.
  await schedules.stop();
  await restoreController.stop();
  await controller.stop();
  await events.flush();
  stopSampling();
  await guard.close();
  await server.close();
  await hypervisor.close();
  await kubeConfig.closeConnections();
}

/** An informer of `resource` in the agent's namespace (all by default), logged and watched over. */
function informerOf<T extends KubeObject>(
  o: { config: AgentConfig; kubeConfig: ConnectionReusingKubeConfig; log: Logger },
  resource: ResourceDescriptor,
  fieldSelector?: string,
): Informer<T> {
  return new Informer<T>({
    kubeConfig: o.kubeConfig,
    resource,
    ...(fieldSelector ? { fieldSelector } : {}),
    ...(o.config.namespace ? { namespace: o.config.namespace } : {}),
    onEvent: (diagnostic) => o.log.debug(`${resource.plural} informer`, { ...diagnostic }),
    onConnectionSuspect: () => o.kubeConfig.dropConnections(),
  });
}

/**
 * The controller of VMRestores. Every agent watches them all (a restore names a snapshot, not a
 * node) and works on those of its own node's snapshots; restores share the domain locks with the
 * snapshots (the same Admission in `effects`).
 */
function restoresController(o: {
  config: AgentConfig;
  kubeConfig: ConnectionReusingKubeConfig;
  snapshots: Informer<VMSnapshot>;
  effects: Omit<RestoreEffectsOptions, "snapshots">;
  events: KubeEventRecorder;
  metrics: VmsnapMetrics;
  log: Logger;
}): Controller<VMRestore> {
  const { kubeConfig, snapshots, metrics, log } = o;
  const kind = restoreKind(
    new RestoreEffects({
      ...o.effects,
      snapshots: {
        cached: (namespace, name) => snapshots.getByKey(`${namespace}/${name}`),
        client: new KubeObjectClient<VMSnapshot>(kubeConfig, vmsnapshots),
      },
    }),
  );
  const restores = informerOf<VMRestore>(o, vmrestores);
  const workers = 2;
  return new Controller({
    kind,
    cache: restores,
    queue: new WorkQueue({ metrics: workqueueMetricsHooks(metrics.forWorkqueue(kind.name)) }),
    reconciler: new Reconciler({
      kind,
      read: (key) => restores.getByKey(key),
      client: new KubeObjectClient<VMRestore>(kubeConfig, vmrestores),
      events: o.events,
      observer: new RestoreMetricsObserver(metrics),
      log: (m, f) => log.warn(m, f),
    }),
    workers,
    log,
    metrics: metrics.forController(kind.name, workers),
  });
}

/**
 * The controller of this node's VMSnapshotSchedules: its own informer and queue, the same
 * workers' loop, and a wake-up whenever one of their runs changes in the snapshot cache.
 */
function scheduleController(o: {
  config: AgentConfig;
  kubeConfig: ConnectionReusingKubeConfig;
  snapshots: Informer<VMSnapshot>;
  events: KubeEventRecorder;
  metrics: VmsnapMetrics;
  log: Logger;
}): Controller<VMSnapshotSchedule> {
  const { config, kubeConfig, snapshots, metrics, log } = o;
  const kind = { name: "vmsnapshotschedule" };
  const informer = informerOf<VMSnapshotSchedule>(
    o,
    vmsnapshotschedules,
    schedulesOnNode(config.nodeName),
  );
  const queueMetrics = metrics.forWorkqueue(kind.name);
  const queue = new WorkQueue({ metrics: workqueueMetricsHooks(queueMetrics) });
  const owners = new RunOwners();
  snapshots.onChange((key) => {
    const schedule = owners.changed(key, snapshots.getByKey(key));
    if (schedule !== undefined) queue.add(schedule);
  });
  const reconciler = new ScheduleReconciler({
    read: (key) => informer.getByKey(key),
    // A schedule's runs are on its node, so this node's snapshot cache holds them all.
    runs: (namespace, labelValue) =>
      snapshots
        .list()
        .filter(
          (s) =>
            s.metadata.namespace === namespace &&
            s.metadata.labels?.[SCHEDULE_LABEL] === labelValue,
        ),
    schedules: new KubeObjectClient<VMSnapshotSchedule>(kubeConfig, vmsnapshotschedules),
    snapshots: new KubeObjectClient<VMSnapshot>(kubeConfig, vmsnapshots),
    events: o.events,
    metrics,
    log: (m, f) => log.info(m, f),
  });
  return new Controller({
    kind,
    cache: informer,
    queue,
    reconciler,
    workers: config.workers,
    log,
    metrics: metrics.forController(kind.name, config.workers),
  });
}

/** Production storage: RBD group snapshots through Ceph, file disks through libvirt, timed. */
export function storageBackends(
  config: AgentConfig,
  hypervisor: Hypervisor,
  metrics: VmsnapMetrics,
): StorageRegistry {
  return new StorageRegistry([
    timedBackend(new RbdBackend({ config: rbdConfigOf(config) }), metrics),
    timedBackend(new LibvirtFileBackend({ hypervisor }), metrics),
  ]);
}

/** The Ceph client settings of the configuration. */
export function rbdConfigOf(config: AgentConfig): RbdConfig {
  return {
    confPath: config.cephConf,
    clientId: config.cephId,
    keyringPath: config.cephKeyring,
    opTimeoutSeconds: config.cephOpTimeoutSeconds,
  };
}

/**
 * The agent's command line: parses `argv` (flags, then environment), prints usage or a
 * configuration error (exit 2), runs the agent with `storage`, and exits when it has stopped.
 */
export async function runFromCommandLine(
  argv: readonly string[],
  storage: StorageWiring = storageBackends,
): Promise<void> {
  let config;
  try {
    config = parseConfig(argv, process.env);
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
    await runAgent(config, log, storage);
    // Abandoned libvirt calls (hung past their deadline) would keep the process alive.
    process.exit(0);
  } catch (err) {
    log.error("fatal", { error: err instanceof Error ? (err.stack ?? err.message) : String(err) });
    process.exit(1);
  }
}
