// A one-node Kubernetes cluster around the run's control plane (kube/control-plane.ts):
// containerd, a kubelet registered as the control plane's node identity, kube-scheduler, and a
// kube-controller-manager running only what a DaemonSet needs — the DaemonSet controller, the
// node lifecycle controller (it lifts the not-ready taint a new node carries) and the root CA
// publisher (the kube-root-ca.crt ConfigMap a projected service-account volume reads). Nothing
// else: no kube-proxy, no DNS, no pod network; the pods it runs use the host's network.
//
// Everything lives in one run folder named after the mocha process; a later run cleans up after
// a crashed one (its daemons by pid file, its shims and containers, mounts, cgroups, and the
// kernel tunables the kubelet changed).
import {
  closeSync,
  existsSync,
  fstatSync,
  mkdirSync,
  openSync,
  readFileSync,
  readSync,
  readdirSync,
  rmSync,
} from "node:fs";
import { join } from "node:path";
import { randomBytes } from "node:crypto";
import type { ControlPlane } from "../kube/control-plane.ts";
import {
  freePort,
  isAlive,
  logTail,
  startDaemon,
  stopLeftover,
  waitFor,
  type Daemon,
} from "../processes.ts";
import { startContainerd, type Containerd } from "./containerd.ts";
import { cleanUpKubeletHost, startKubelet, type Kubelet } from "./kubelet.ts";

const RUNS_DIR = "/tmp/vmsnap-test";
const RUN_PREFIX = "node-";
const NODE_READY_TIMEOUT_MS = 60_000;
/** Stopped in this order: nothing schedules or creates pods while the kubelet goes. */
const DAEMONS = ["kube-controller-manager", "kube-scheduler", "kubelet", "containerd"] as const;
const CONTROLLERS = ["daemonset", "nodelifecycle", "root-ca-cert-publisher"];
/** Built by `make control-plane` beside kube-apiserver. */
const BINARIES = ["kubelet", "kube-scheduler", "kube-controller-manager"];

export interface OneNodeCluster {
  readonly nodeName: string;
  /** The node's own folder (daemons' logs, kubelet root, pod logs), removed by stop(). */
  readonly runDir: string;
  readonly containerd: Containerd;
  readonly kubelet: Kubelet;
  /** Milliseconds from start to each step, for the test's log. */
  readonly timings: Readonly<Record<string, number>>;
  /** A container's log file as the kubelet keeps it (its latest run): CRI lines, each
   * `<RFC 3339 time> <stream> <P|F> <text>`; "" once the kubelet has removed it. */
  podLog(namespace: string, pod: string, container: string): string;
  /**
   * A container's current log file held open: it reads to its end even after the kubelet has
   * removed the file with the container (an unlinked file stays readable through its
   * descriptor). Undefined while the file does not exist.
   */
  openPodLog(namespace: string, pod: string, container: string): OpenLog | undefined;
  /** Stops every daemon and undoes what they left on the host; removes the Node object. */
  stop(): Promise<string[]>;
}

export interface OpenLog {
  /** Everything written so far. */
  read(): string;
  close(): void;
}

export interface OneNodeClusterOptions {
  readonly nodeLabels: Readonly<Record<string, string>>;
}

export async function startOneNodeCluster(
  cp: ControlPlane,
  options: OneNodeClusterOptions,
): Promise<OneNodeCluster> {
  const missing = BINARIES.filter((b) => !existsSync(join(cp.binDir, b)));
  if (missing.length > 0)
    throw new Error(
      `${cp.binDir} has no ${missing.join(", ")}: a control-plane build from before they were ` +
        "added; run `make control-plane` (through make, VMSNAP_CONTROL_PLANE names the current one)",
    );
  const started = Date.now();
  const timings: Record<string, number> = {};
  const mark = (step: string) => (timings[step] = Date.now() - started);
  await cleanUpDeadRuns();
  const runDir = join(RUNS_DIR, `${RUN_PREFIX}${process.pid}-${randomBytes(3).toString("hex")}`);
  mkdirSync(runDir, { recursive: true });
  const daemons: Daemon[] = [];
  const stop = async () => {
    for (const name of DAEMONS) await daemons.find((d) => d.name === name)?.stop();
    const cleaned = await cleanUpRun(runDir);
    await cp.kubectl(["delete", "node", cp.node.name, "--ignore-not-found", "--wait=false"]);
    rmSync(runDir, { recursive: true, force: true });
    return cleaned;
  };
  try {
    const containerd = await startContainerd(runDir);
    daemons.push(containerd.daemon);
    mark("containerd");
    const kubelet = await startKubelet({
      runDir,
      binDir: cp.binDir,
      nodeName: cp.node.name,
      kubeconfigPath: cp.node.kubeconfigPath,
      containerdSocket: containerd.socket,
      port: await freePort(),
      nodeLabels: options.nodeLabels,
    });
    daemons.push(kubelet.daemon);
    const component = (name: string, args: readonly string[]) =>
      startDaemon(name, join(cp.binDir, name), args, { runDir });
    const common = [`--kubeconfig=${cp.kubeconfigPath}`, "--leader-elect=false", "--secure-port=0"];
    daemons.push(await component("kube-scheduler", common));
    daemons.push(
      await component("kube-controller-manager", [
        ...common,
        `--controllers=${CONTROLLERS.join(",")}`,
        `--root-ca-file=${cp.caFile}`,
        "--use-service-account-credentials=false",
      ]),
    );
    await waitFor(
      `node ${cp.node.name} Ready without taints`,
      async () => nodeReadyUntainted(cp, cp.node.name),
      NODE_READY_TIMEOUT_MS,
      500,
    );
    mark("node Ready");
    return {
      nodeName: cp.node.name,
      runDir,
      containerd,
      kubelet,
      timings,
      podLog: (namespace, pod, container) => podLog(kubelet.podLogsDir, namespace, pod, container),
      openPodLog: (namespace, pod, container) =>
        openPodLog(kubelet.podLogsDir, namespace, pod, container),
      stop,
    };
  } catch (err) {
    const logs = daemons.map((d) => `--- ${d.name} (tail) ---\n${logTail(d.logFile, 15)}`);
    await stop();
    throw new Error(`${(err as Error).message}\n${logs.join("\n")}`, { cause: err });
  }
}

async function nodeReadyUntainted(cp: ControlPlane, name: string): Promise<boolean> {
  const got = await cp.kubectl(["get", "node", name, "-o", "json"]);
  if (got.code !== 0) return false;
  const node = JSON.parse(got.stdout) as {
    spec: { taints?: unknown[] };
    status: { conditions?: { type: string; status: string }[] };
  };
  const ready = node.status.conditions?.find((c) => c.type === "Ready")?.status === "True";
  return ready && (node.spec.taints ?? []).length === 0;
}

/** After the daemons: the shims they left, then the kubelet's traces on the host. */
async function cleanUpRun(runDir: string): Promise<string[]> {
  const cleaned = killShimsOf(join(runDir, "containerd.sock"));
  return [...cleaned, ...(await cleanUpKubeletHost(runDir))];
}

/**
 * containerd's shims outlive containerd; each names its containerd's socket on its command
 * line, which is unique to the run folder, so only this run's shims match.
 */
function killShimsOf(socket: string): string[] {
  const killed: string[] = [];
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    let argv: string[];
    try {
      argv = readFileSync(`/proc/${entry}/cmdline`, "utf8").split("\0");
    } catch {
      continue;
    }
    if (!argv[0]?.endsWith("containerd-shim-runc-v2")) continue;
    if (argv[argv.indexOf("-address") + 1] !== socket) continue;
    try {
      process.kill(Number(entry), "SIGKILL");
      killed.push(`killed shim ${entry}`);
    } catch {
      // already gone
    }
  }
  return killed;
}

/** Run folders are named after the mocha process that made them; a dead owner means a crash. */
async function cleanUpDeadRuns(): Promise<void> {
  if (!existsSync(RUNS_DIR)) return;
  for (const dir of readdirSync(RUNS_DIR)) {
    const owner = new RegExp(`^${RUN_PREFIX}(\\d+)-`).exec(dir)?.[1];
    if (!owner || isAlive(Number(owner))) continue;
    const runDir = join(RUNS_DIR, dir);
    for (const name of DAEMONS) await stopLeftover(runDir, name);
    const cleaned = await cleanUpRun(runDir);
    if (cleaned.length > 0)
      console.log(`      a crashed run's node (${dir}): ${cleaned.join("; ")}`);
    rmSync(runDir, { recursive: true, force: true });
  }
}

function podLogFile(
  podLogsDir: string,
  namespace: string,
  pod: string,
  container: string,
): string | undefined {
  const podDir = readdirSync(podLogsDir).find((d) => d.startsWith(`${namespace}_${pod}_`));
  if (!podDir) return undefined;
  const dir = join(podLogsDir, podDir, container);
  if (!existsSync(dir)) return undefined;
  const latest = readdirSync(dir)
    .filter((f) => /^\d+\.log$/.test(f))
    .sort((a, b) => parseInt(a) - parseInt(b))
    .at(-1);
  return latest === undefined ? undefined : join(dir, latest);
}

function podLog(podLogsDir: string, namespace: string, pod: string, container: string): string {
  const file = podLogFile(podLogsDir, namespace, pod, container);
  if (file === undefined) return "";
  try {
    return readFileSync(file, "utf8");
  } catch {
    return "";
  }
}

function openPodLog(
  podLogsDir: string,
  namespace: string,
  pod: string,
  container: string,
): OpenLog | undefined {
  const file = podLogFile(podLogsDir, namespace, pod, container);
  if (file === undefined) return undefined;
  const fd = openSync(file, "r");
  return {
    read() {
      const size = fstatSync(fd).size;
      const buffer = Buffer.alloc(size);
      const got = readSync(fd, buffer, 0, size, 0);
      return buffer.subarray(0, got).toString("utf8");
    },
    close: () => closeSync(fd),
  };
}
