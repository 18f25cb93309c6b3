// The kubelet of a test's one-node cluster, and every trace it leaves on the host, so that the
// node's clean-up (cluster.ts) can undo them, after a crashed run too. The kubelet is the one
// `make control-plane` builds (k8s.io/kubernetes/cmd/kubelet), run as the node identity the
// control plane's token file names.
//
// What it needs or changes here, each measured (docs/image-facts.md, "A real kubelet"):
// - `failCgroupV1: false`: this machine has cgroup v1 (hybrid), which the kubelet refuses by
//   default since 1.35. Its pods go under a cgroup root of their own in every v1 hierarchy.
// - `makeIPTablesUtilChains: false`: otherwise it adds KUBE-FIREWALL and canary chains to the
//   host's iptables and keeps them there; a host-network pod needs none of them.
// - kernel tunables (vm.overcommit_memory, kernel.panic, ...): it sets them at start; their
//   values from before are saved in the run folder and written back at clean-up.
// - its root folder becomes a shared bind mount, and a pod's Secret, projected and Memory
//   emptyDir volumes are tmpfs mounts under it; the pod logs go to the run folder, but the
//   symlinks in /var/log/containers are fixed.
import {
  existsSync,
  mkdirSync,
  readFileSync,
  readdirSync,
  readlinkSync,
  rmSync,
  rmdirSync,
  writeFileSync,
} from "node:fs";
import { join } from "node:path";
import { run } from "../kube/control-plane.ts";
import { startDaemon, type Daemon } from "../processes.ts";

/** What the kubelet's container manager writes (setupKernelTunables in kubelet's cm package). */
const KERNEL_TUNABLES = [
  "vm/overcommit_memory",
  "vm/panic_on_oom",
  "kernel/panic",
  "kernel/panic_on_oops",
  "kernel/keys/root_maxkeys",
  "kernel/keys/root_maxbytes",
];
const SAVED_TUNABLES = "kernel-tunables.json";
const CONTAINER_LOG_LINKS = "/var/log/containers";

export interface KubeletOptions {
  readonly runDir: string;
  readonly binDir: string;
  readonly nodeName: string;
  readonly kubeconfigPath: string;
  readonly containerdSocket: string;
  readonly port: number;
  readonly nodeLabels: Readonly<Record<string, string>>;
}

export interface Kubelet {
  readonly daemon: Daemon;
  readonly rootDir: string;
  /** Where the pod logs are: `<ns>_<pod>_<uid>/<container>/<restarts>.log`. */
  readonly podLogsDir: string;
}

export async function startKubelet(o: KubeletOptions): Promise<Kubelet> {
  const rootDir = join(o.runDir, "kubelet");
  const podLogsDir = join(o.runDir, "pod-logs");
  mkdirSync(rootDir, { recursive: true });
  mkdirSync(podLogsDir, { recursive: true });
  saveKernelTunables(o.runDir);
  const cgroupRoot = makeCgroupRoot(o.runDir);
  const config = join(o.runDir, "kubelet-config.json");
  writeFileSync(
    config,
    JSON.stringify(
      {
        apiVersion: "kubelet.config.k8s.io/v1beta1",
        kind: "KubeletConfiguration",
        failCgroupV1: false,
        cgroupDriver: "cgroupfs",
        cgroupRoot,
        containerRuntimeEndpoint: `unix://${o.containerdSocket}`,
        podLogsDir,
        makeIPTablesUtilChains: false,
        // Loopback only, and nothing to serve but what the test asks for.
        address: "127.0.0.1",
        port: o.port,
        healthzPort: 0,
        readOnlyPort: 0,
        authentication: { anonymous: { enabled: false }, webhook: { enabled: false } },
        authorization: { mode: "AlwaysAllow" },
        // The agent image is imported, not pulled: it must never be collected or evicted for
        // a disk that other work fills.
        imageGCHighThresholdPercent: 100,
        imageGCLowThresholdPercent: 99,
        evictionHard: {
          "memory.available": "1Mi",
          "nodefs.available": "1%",
          "imagefs.available": "1%",
          "nodefs.inodesFree": "1%",
        },
        failSwapOn: false,
      },
      null,
      2,
    ),
  );
  const labels = Object.entries(o.nodeLabels)
    .map(([k, v]) => `${k}=${v}`)
    .join(",");
  const daemon = await startDaemon(
    "kubelet",
    join(o.binDir, "kubelet"),
    [
      `--config=${config}`,
      `--kubeconfig=${o.kubeconfigPath}`,
      `--root-dir=${rootDir}`,
      `--cert-dir=${join(rootDir, "pki")}`,
      `--hostname-override=${o.nodeName}`,
      `--node-labels=${labels}`,
    ],
    { runDir: o.runDir },
  );
  return { daemon, rootDir, podLogsDir };
}

/** The name of a run's cgroup root: one per run folder, so runs never share one. */
function cgroupRootOf(runDir: string): string {
  return `/vmsnap-${runDir.split("/").at(-1)!}`;
}

/** Every mounted cgroup hierarchy (the v1 controllers and the hybrid's unified one). */
function cgroupMounts(): string[] {
  return readFileSync("/proc/self/mountinfo", "utf8")
    .split("\n")
    .map((l) => l.split(" "))
    .filter((f) => {
      const type = f[f.indexOf("-") + 1];
      return type === "cgroup" || type === "cgroup2";
    })
    .map((f) => f[4]!);
}

/** Creates the cgroup root in every hierarchy (the kubelet checks it exists) and returns it. */
function makeCgroupRoot(runDir: string): string {
  const root = cgroupRootOf(runDir);
  for (const mount of cgroupMounts()) {
    const dir = join(mount, root);
    mkdirSync(dir, { recursive: true });
    // A new v1 cpuset has no CPUs and no memory nodes, and no task can join it.
    for (const f of ["cpuset.cpus", "cpuset.mems"])
      if (existsSync(join(dir, f))) writeFileSync(join(dir, f), readFileSync(join(mount, f)));
  }
  return root;
}

function saveKernelTunables(runDir: string): void {
  const file = join(runDir, SAVED_TUNABLES);
  if (existsSync(file)) return;
  const values = Object.fromEntries(
    KERNEL_TUNABLES.map((t) => [t, readFileSync(`/proc/sys/${t}`, "utf8").trim()]),
  );
  writeFileSync(file, JSON.stringify(values));
}

/**
 * Undoes what a kubelet of `runDir` left on the host, after it and containerd are stopped:
 * processes still in its cgroups (a crashed run's containers), its mounts, its log links, the
 * kernel tunables and the cgroups themselves. Returns what it had to clean, for the log.
 */
export async function cleanUpKubeletHost(runDir: string): Promise<string[]> {
  const cleaned: string[] = [];
  const root = cgroupRootOf(runDir);
  const cgroupDirs = cgroupMounts()
    .map((m) => join(m, root))
    .filter((d) => existsSync(d));
  for (const pid of new Set(cgroupDirs.flatMap(processesUnder))) {
    try {
      process.kill(pid, "SIGKILL");
      cleaned.push(`killed pid ${pid} left in ${root}`);
    } catch {
      // already gone
    }
  }
  for (const mount of mountsUnder(runDir)) {
    const r = await run("umount", [mount]);
    if (r.code !== 0) await run("umount", ["--lazy", mount]);
    cleaned.push(`unmounted ${mount}`);
  }
  if (existsSync(CONTAINER_LOG_LINKS))
    for (const link of readdirSync(CONTAINER_LOG_LINKS)) {
      const path = join(CONTAINER_LOG_LINKS, link);
      let target: string;
      try {
        target = readlinkSync(path);
      } catch {
        continue;
      }
      if (target.startsWith(`${runDir}/`)) {
        rmSync(path, { force: true });
        cleaned.push(`removed ${path}`);
      }
    }
  const saved = join(runDir, SAVED_TUNABLES);
  if (existsSync(saved)) {
    const values = JSON.parse(readFileSync(saved, "utf8")) as Record<string, string>;
    for (const [tunable, value] of Object.entries(values)) {
      if (readFileSync(`/proc/sys/${tunable}`, "utf8").trim() === value) continue;
      writeFileSync(`/proc/sys/${tunable}`, value);
      cleaned.push(`restored ${tunable.replaceAll("/", ".")} = ${value}`);
    }
    rmSync(saved);
  }
  for (const dir of cgroupDirs) await removeCgroupTree(dir);
  return cleaned;
}

function processesUnder(dir: string): number[] {
  if (!existsSync(dir)) return [];
  const here = readFileSync(join(dir, "cgroup.procs"), "utf8")
    .split("\n")
    .filter(Boolean)
    .map(Number);
  const children = readdirSync(dir, { withFileTypes: true })
    .filter((e) => e.isDirectory())
    .flatMap((e) => processesUnder(join(dir, e.name)));
  return [...here, ...children];
}

/** Children first; a cgroup whose last task just died may refuse rmdir for a moment. */
async function removeCgroupTree(dir: string): Promise<void> {
  for (const e of readdirSync(dir, { withFileTypes: true }))
    if (e.isDirectory()) await removeCgroupTree(join(dir, e.name));
  for (let attempt = 0; ; attempt++) {
    try {
      if (existsSync(dir)) rmdirSync(dir);
      return;
    } catch (err) {
      if (attempt >= 50) throw new Error(`cannot remove cgroup ${dir}`, { cause: err });
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}

/** Mount points at or under `dir`, deepest first. */
function mountsUnder(dir: string): string[] {
  return readFileSync("/proc/self/mountinfo", "utf8")
    .split("\n")
    .map((l) => l.split(" ")[4])
    .filter((m): m is string => m !== undefined && (m === dir || m.startsWith(`${dir}/`)))
    .sort((a, b) => b.length - a.length);
}
