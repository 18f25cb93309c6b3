// A real Kubernetes control plane for tests: etcd and kube-apiserver built from the Go module
// proxy (`make control-plane`), started on random loopback ports, with a token-file admin in
// system:masters, RBAC and the Node authorizer, service-account signing keys, the vmsnap CRDs
// installed, and one kubeconfig used by both kubectl and the client library. The token file also
// names one node identity, for a kubelet a test may start (test/support/node/). One control plane serves a whole
// mocha run; each test takes its own namespace (there is no namespace controller to delete
// them, so names are unique instead).
import { execFile } from "node:child_process";
import { generateKeyPairSync, randomBytes } from "node:crypto";
import { existsSync, mkdirSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { homedir } from "node:os";
import { join, resolve } from "node:path";
import { KubeConfig } from "@kubernetes/client-node";
import {
  freePort,
  isAlive,
  logTail,
  startDaemon,
  stopLeftover,
  waitFor,
  type Daemon,
} from "../processes.ts";
import { onTeardown } from "../teardown.ts";

export const REPO_ROOT = resolve(import.meta.dirname, "../../..");
const RUNS_DIR = "/tmp/vmsnap-test";
const ADMIN_TOKEN_BYTES = 24;
/** The apiserver reads its token file once, so the one node a run may register is named up front. */
const NODE_NAME_PREFIX = "vmsnap-node";

export interface CommandResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

export interface ControlPlane {
  readonly server: string;
  readonly kubeconfigPath: string;
  readonly binDir: string;
  /** The apiserver's serving CA (self-signed), as clients and a controller-manager trust it. */
  readonly caFile: string;
  /**
   * The one node a kubelet may register as: user `system:node:<name>` in group `system:nodes`,
   * so the Node authorizer and NodeRestriction treat it as that node and nothing more.
   */
  readonly node: { readonly name: string; readonly kubeconfigPath: string };
  /** A fresh client configuration for this control plane. */
  kubeConfig(): KubeConfig;
  /** Runs kubectl against this control plane; never throws on a non-zero exit. */
  kubectl(args: readonly string[], input?: string): Promise<CommandResult>;
  /** Creates a namespace with a unique name and returns it. */
  newNamespace(prefix?: string): Promise<string>;
  /** Stops kube-apiserver and starts it again on the same port and etcd (data survives). */
  restartApiserver(): Promise<void>;
  stop(): Promise<void>;
}

/** Where `make control-plane` put the binaries: $VMSNAP_CONTROL_PLANE, else the newest cached build. */
export function controlPlaneBinDir(): string {
  const fromEnv = process.env.VMSNAP_CONTROL_PLANE;
  if (fromEnv && existsSync(join(fromEnv, "kube-apiserver"))) return fromEnv;
  const cache = join(homedir(), ".cache/vmsnap/control-plane");
  const builds = existsSync(cache)
    ? readdirSync(cache).filter((d) => existsSync(join(cache, d, "kube-apiserver")))
    : [];
  if (builds.length === 0) {
    throw new Error("no kube-apiserver build found: run `make control-plane` first");
  }
  return join(cache, builds.sort().at(-1)!);
}

let shared: Promise<ControlPlane> | undefined;

/** The control plane shared by every test file of this run, started on first use. */
export function getControlPlane(): Promise<ControlPlane> {
  if (!shared) {
    shared = startControlPlane();
    onTeardown(async () => (await shared!).stop());
  }
  return shared;
}

/** Starts a dedicated control plane (most tests want `getControlPlane()` instead). */
export async function startControlPlane(): Promise<ControlPlane> {
  const binDir = controlPlaneBinDir();
  await stopLeftoversOfDeadRuns();
  const runDir = join(RUNS_DIR, `cp-${process.pid}-${randomBytes(3).toString("hex")}`);
  mkdirSync(runDir, { recursive: true });

  const [etcdClientPort, etcdPeerPort, apiPort] = [
    await freePort(),
    await freePort(),
    await freePort(),
  ];
  const etcd = await startDaemon(
    "etcd",
    join(binDir, "etcd"),
    [
      "--name=vmsnap-test",
      `--data-dir=${join(runDir, "etcd-data")}`,
      `--listen-client-urls=http://127.0.0.1:${etcdClientPort}`,
      `--advertise-client-urls=http://127.0.0.1:${etcdClientPort}`,
      `--listen-peer-urls=http://127.0.0.1:${etcdPeerPort}`,
      `--initial-advertise-peer-urls=http://127.0.0.1:${etcdPeerPort}`,
      `--initial-cluster=vmsnap-test=http://127.0.0.1:${etcdPeerPort}`,
      "--unsafe-no-fsync",
      "--log-level=warn",
    ],
    { runDir },
  );

  const token = randomBytes(ADMIN_TOKEN_BYTES).toString("hex");
  const nodeToken = randomBytes(ADMIN_TOKEN_BYTES).toString("hex");
  const nodeName = `${NODE_NAME_PREFIX}-${randomBytes(3).toString("hex")}`;
  writeFileSync(
    join(runDir, "tokens.csv"),
    `${token},vmsnap-admin,vmsnap-admin,"system:masters"\n` +
      `${nodeToken},system:node:${nodeName},${nodeName},"system:nodes"\n`,
  );
  const { privateKey, publicKey } = generateKeyPairSync("rsa", { modulusLength: 2048 });
  writeFileSync(join(runDir, "sa.key"), privateKey.export({ type: "pkcs8", format: "pem" }));
  writeFileSync(join(runDir, "sa.pub"), publicKey.export({ type: "spki", format: "pem" }));
  const certDir = join(runDir, "certs");
  const apiserverArgs = [
    `--etcd-servers=http://127.0.0.1:${etcdClientPort}`,
    `--secure-port=${apiPort}`,
    "--bind-address=127.0.0.1",
    "--advertise-address=127.0.0.1",
    // The endpoint reconciler refuses loopback addresses; nothing here needs the
    // `kubernetes` Service's endpoints.
    "--endpoint-reconciler-type=none",
    `--cert-dir=${certDir}`,
    // Node first, as kubeadm sets it: a kubelet reads only what its own pods reference.
    "--authorization-mode=Node,RBAC",
    `--token-auth-file=${join(runDir, "tokens.csv")}`,
    "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
    `--service-account-key-file=${join(runDir, "sa.pub")}`,
    `--service-account-signing-key-file=${join(runDir, "sa.key")}`,
    "--service-cluster-ip-range=10.0.0.0/24",
    // No controller-manager runs, so nothing would create service-account tokens for pods.
    "--disable-admission-plugins=ServiceAccount",
    "--enable-admission-plugins=NodeRestriction",
    "--allow-privileged=true",
  ];
  const startApiserver = () =>
    startDaemon("kube-apiserver", join(binDir, "kube-apiserver"), apiserverArgs, { runDir });
  let apiserver: Daemon = await startApiserver();

  const server = `https://127.0.0.1:${apiPort}`;
  const kubeconfigPath = join(runDir, "kubeconfig");
  const nodeKubeconfigPath = join(runDir, "node.kubeconfig");
  const caFile = join(certDir, "apiserver.crt");
  const kubectl = (args: readonly string[], input?: string) =>
    run(join(binDir, "kubectl"), ["--kubeconfig", kubeconfigPath, ...args], input);

  const waitReady = async () => {
    await waitFor(
      "kube-apiserver /readyz",
      async () => (await kubectl(["get", "--raw", "/readyz"])).stdout.trim() === "ok",
      60_000,
      200,
    );
  };

  const stop = async () => {
    await apiserver.stop();
    await etcd.stop();
    rmSync(runDir, { recursive: true, force: true });
  };

  try {
    await waitFor(
      "kube-apiserver serving certificate",
      () => existsSync(join(certDir, "apiserver.crt")),
      60_000,
    );
    writeKubeconfig(kubeconfigPath, server, caFile, "vmsnap-admin", token);
    writeKubeconfig(nodeKubeconfigPath, server, caFile, `system:node:${nodeName}`, nodeToken);
    await waitReady();
    // -k: crds/ holds a kustomization.yaml (deploy/ takes the CRDs from it), which -f would
    // try to apply as an object.
    const applied = await kubectl(["apply", "-k", join(REPO_ROOT, "crds")]);
    if (applied.code !== 0) throw new Error(`installing crds/ failed: ${applied.stderr}`);
    const established = await kubectl([
      "wait",
      "--for=condition=Established",
      "--timeout=60s",
      // kubectl wait takes no -k; this control plane has no CRDs but ours.
      "crd",
      "--all",
    ]);
    if (established.code !== 0) throw new Error(`CRDs not Established: ${established.stderr}`);
  } catch (err) {
    const logs = [etcd, apiserver].map(
      (d) => `--- ${d.name} log (tail) ---\n${logTail(d.logFile, 25)}`,
    );
    await stop();
    throw new Error(`${(err as Error).message}\n${logs.join("\n")}`, { cause: err });
  }

  return {
    server,
    kubeconfigPath,
    binDir,
    caFile,
    node: { name: nodeName, kubeconfigPath: nodeKubeconfigPath },
    kubeConfig() {
      const kc = new KubeConfig();
      kc.loadFromFile(kubeconfigPath);
      return kc;
    },
    kubectl,
    async newNamespace(prefix = "t") {
      const name = `${prefix}-${randomBytes(4).toString("hex")}`;
      const created = await kubectl(["create", "namespace", name]);
      if (created.code !== 0) throw new Error(`creating namespace ${name}: ${created.stderr}`);
      return name;
    },
    async restartApiserver() {
      await apiserver.stop();
      apiserver = await startApiserver();
      await waitReady();
    },
    stop,
  };
}

function writeKubeconfig(
  path: string,
  server: string,
  caFile: string,
  user: string,
  token: string,
): void {
  const kubeconfig = {
    apiVersion: "v1",
    kind: "Config",
    clusters: [{ name: "vmsnap-test", cluster: { server, "certificate-authority": caFile } }],
    users: [{ name: user, user: { token } }],
    contexts: [{ name: "vmsnap-test", context: { cluster: "vmsnap-test", user } }],
    "current-context": "vmsnap-test",
  };
  writeFileSync(path, JSON.stringify(kubeconfig, null, 2), { mode: 0o600 });
}

/** Run folders are named after the mocha process that made them; a dead owner means a crashed run. */
async function stopLeftoversOfDeadRuns(): Promise<void> {
  if (!existsSync(RUNS_DIR)) return;
  for (const dir of readdirSync(RUNS_DIR)) {
    const owner = /^cp-(\d+)-/.exec(dir)?.[1];
    if (!owner || isAlive(Number(owner))) continue;
    const runDir = join(RUNS_DIR, dir);
    await stopLeftover(runDir, "kube-apiserver");
    await stopLeftover(runDir, "etcd");
    rmSync(runDir, { recursive: true, force: true });
  }
}

/** Runs a program with an argument array (never a shell), collecting its output. */
export function run(
  command: string,
  args: readonly string[],
  input?: string,
): Promise<CommandResult> {
  return new Promise((resolvePromise) => {
    const child = execFile(
      command,
      args,
      { maxBuffer: 64 * 1024 * 1024 },
      (error, stdout, stderr) => {
        const code = error ? (typeof error.code === "number" ? error.code : 1) : 0;
        resolvePromise({ code, stdout, stderr });
      },
    );
    if (input !== undefined) child.stdin?.end(input);
    else child.stdin?.end();
  });
}
