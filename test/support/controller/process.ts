// The vmsnap controller as the tests meet it: a real process (`src/main.ts` under tsx, or the
// bundle the image runs) started with flags against the test control plane, a libvirt URI and
// the test Ceph cluster, so a test can SIGKILL it at any instant and start another one.
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { tmpdir } from "node:os";
import { freePort, startDaemon, waitFor, type Daemon } from "../processes.ts";
import { REPO_ROOT } from "../kube/control-plane.ts";
import { deployedRuntime } from "./deployed-runtime.ts";
import { onTeardown } from "../teardown.ts";

export interface ControllerProcessOptions {
  readonly kubeconfig: string;
  readonly nodeName: string;
  readonly libvirtUri: string;
  readonly ceph: { confPath: string; clientId: string; keyringPath: string };
  readonly cephOpTimeoutSeconds?: number;
  readonly namespace?: string;
  readonly memoryDir?: string;
  readonly workers?: number;
  readonly maxFrozenGuests?: number;
  /**
   * --allow-unowned-domains: test domains carry no owner element, so by default every namespace
   * may snapshot them ("*"); "" is the deployed default, deny.
   */
  readonly unownedDomains?: string;
  readonly extraArgs?: readonly string[];
  /** Added to the controller's environment (e.g. a PATH whose `rbd` a test wraps). */
  readonly env?: Readonly<Record<string, string>>;
  /**
   * The entry point: src/main.ts under tsx by default; another .ts file also runs under tsx
   * (bench/lib/bench-main.ts); a bundled one (test/support/controller/bundle.ts) runs with plain
   * node.
   */
  readonly entry?: string;
}

export interface ControllerProcess {
  readonly pid: number;
  readonly metricsPort: number;
  readonly memoryDir: string;
  readonly logFile: string;
  log(): string;
  /** Sends a signal to the controller's main process only (its guard lives on). */
  kill(signal: NodeJS.Signals): void;
  /** Graceful stop (SIGTERM), or whatever `signal` says; waits until it is gone. */
  stop(signal?: NodeJS.Signals): Promise<void>;
}

const NODE = process.execPath;

/** Starts the controller and waits until /readyz says it reconciles. */
export async function startController(o: ControllerProcessOptions): Promise<ControllerProcess> {
  const runDir = mkdtempSync(join(tmpdir(), "vmsnap-ctl-"));
  const memoryDir = o.memoryDir ?? join(runDir, "memory");
  const metricsPort = await freePort();
  const runtime = deployedRuntime();
  const args = [
    // As deployed: the Dockerfile's node flags (memory tuning), read from the Dockerfile.
    ...runtime.nodeFlags,
    ...entryArgs(o.entry ?? join(REPO_ROOT, "src/main.ts")),
    "--kubeconfig",
    o.kubeconfig,
    "--node-name",
    o.nodeName,
    "--libvirt-uri",
    o.libvirtUri,
    "--ceph-conf",
    o.ceph.confPath,
    "--ceph-id",
    o.ceph.clientId,
    "--ceph-keyring",
    o.ceph.keyringPath,
    "--ceph-op-timeout",
    String(o.cephOpTimeoutSeconds ?? 5),
    "--memory-dir",
    memoryDir,
    "--workers",
    String(o.workers ?? 4),
    "--max-frozen-guests",
    String(o.maxFrozenGuests ?? 4),
    "--metrics-bind-address",
    `127.0.0.1:${metricsPort}`,
    "--log-level",
    "debug",
    `--allow-unowned-domains=${o.unownedDomains ?? "*"}`,
    ...(o.namespace ? ["--namespace", o.namespace] : []),
    ...(o.extraArgs ?? []),
  ];
  const daemon: Daemon = await startDaemon("vmsnap-controller", NODE, args, {
    runDir,
    cwd: REPO_ROOT,
    // As deployed: the DaemonSet's runtime variables (MALLOC_ARENA_MAX).
    env: { ...process.env, ...runtime.env, ...o.env },
  });
  let stopped = false;
  const controller: ControllerProcess = {
    pid: daemon.pid,
    metricsPort,
    memoryDir,
    logFile: daemon.logFile,
    log: () => readFileSync(daemon.logFile, "utf8"),
    kill: (signal) => process.kill(daemon.pid, signal),
    async stop(signal: NodeJS.Signals = "SIGTERM") {
      if (stopped) return;
      stopped = true;
      await daemon.stop(signal, 30_000);
      // The log goes with the run folder; a failing start has already quoted it.
      rmSync(runDir, { recursive: true, force: true });
    },
  };
  onTeardown(() => controller.stop("SIGKILL"));
  try {
    await waitFor(
      "the controller's /readyz",
      async () => (await fetch(`http://127.0.0.1:${metricsPort}/readyz`)).ok,
      60_000,
      100,
    );
  } catch (err) {
    await controller.stop("SIGKILL");
    throw new Error(
      `${(err as Error).message}\n--- controller log ---\n${controller.log().slice(-4000)}`,
      { cause: err },
    );
  }
  return controller;
}

function entryArgs(entry: string): string[] {
  return entry.endsWith(".ts") ? ["--import", "tsx", entry] : [entry];
}
