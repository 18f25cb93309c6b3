// The controller as deployed: the bundle the image runs (tools/bundle.ts, built by
// test/support/bundle.ts outside the checkout), under plain node with the runtime settings the
// deployment gives it — the node flags of the Dockerfile's ENTRYPOINT and the process-tuning
// variables (MALLOC_*, UV_*, NODE_OPTIONS) of the controller container in
// deploy/controller/daemonset.yaml, read from those files so the benchmark follows them — not
// under tsx as the tests run it.
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { parseAllDocuments } from "yaml";
import { bundleController } from "../../test/support/bundle.ts";
import { REPO_ROOT } from "../../test/support/control-plane.ts";
import { freePort, startDaemon, waitFor } from "../../test/support/processes.ts";
import { onTeardown } from "../../test/support/teardown.ts";

export interface CompiledController {
  readonly pid: number;
  readonly metricsPort: number;
  stop(): Promise<void>;
}

export interface DeployedRuntime {
  /** Node flags before the script in the Dockerfile's ENTRYPOINT, e.g. --max-semi-space-size=1. */
  readonly nodeFlags: string[];
  /** Runtime-tuning variables of the controller container (literal values only). */
  readonly env: Record<string, string>;
}

/** The node flags and runtime variables the deployment runs the controller with. */
export function deployedRuntime(): DeployedRuntime {
  const dockerfile = readFileSync(join(REPO_ROOT, "Dockerfile"), "utf8");
  const entrypoint = /^ENTRYPOINT\s+(\[.*\])\s*$/m.exec(dockerfile)?.[1];
  const argv = entrypoint ? (JSON.parse(entrypoint) as string[]) : [];
  const script = argv.findIndex((a) => a.endsWith(".js"));
  const nodeFlags = argv[0] === "node" && script > 0 ? argv.slice(1, script) : [];
  const env: Record<string, string> = {};
  const manifest = readFileSync(join(REPO_ROOT, "deploy/controller/daemonset.yaml"), "utf8");
  for (const doc of parseAllDocuments(manifest)) {
    const containers = (doc.toJS() as DaemonSetLike | null)?.spec?.template?.spec?.containers ?? [];
    for (const c of containers.filter((c) => c.name === "controller")) {
      for (const e of c.env ?? []) {
        if (/^(MALLOC_|UV_|NODE_OPTIONS$)/.test(e.name) && typeof e.value === "string")
          env[e.name] = e.value;
      }
    }
  }
  return { nodeFlags, env };
}

interface DaemonSetLike {
  spec?: {
    template?: {
      spec?: {
        containers?: Array<{ name: string; env?: Array<{ name: string; value?: unknown }> }>;
      };
    };
  };
}

/** Starts the bundled controller with the flags startController (test support) uses. */
export async function startCompiledController(flags: {
  kubeconfig: string;
  node: string;
  namespace: string;
  libvirtUri: string;
  storage: "real" | "sequential" | "noop";
}): Promise<CompiledController> {
  const bundle = await bundleController();
  const runDir = mkdtempSync(join(tmpdir(), "vmsnap-bench-ctl-"));
  const metricsPort = await freePort();
  const runtime = deployedRuntime();
  const args = [
    ...runtime.nodeFlags,
    bundle.main,
    ...[
      "--kubeconfig",
      flags.kubeconfig,
      "--node-name",
      flags.node,
      "--namespace",
      flags.namespace,
    ],
    ...["--libvirt-uri", flags.libvirtUri, "--memory-dir", join(runDir, "memory")],
    ...[
      "--ceph-conf",
      "/nonexistent/ceph.conf",
      "--ceph-id",
      "none",
      "--ceph-keyring",
      "/nonexistent",
    ],
    ...["--workers", "4", "--max-frozen-guests", "4", "--log-level", "info"],
    ...["--metrics-bind-address", `127.0.0.1:${metricsPort}`, "--bench-storage", flags.storage],
  ];
  const daemon = await startDaemon("vmsnap-controller-compiled", process.execPath, args, {
    runDir,
    cwd: dirname(bundle.main),
    env: { ...process.env, ...runtime.env },
  });
  let stopped = false;
  const stop = async () => {
    if (stopped) return;
    stopped = true;
    await daemon.stop("SIGTERM", 30_000);
    rmSync(runDir, { recursive: true, force: true });
  };
  onTeardown(stop);
  await waitFor(
    "the bundled controller's /readyz",
    async () => (await fetch(`http://127.0.0.1:${metricsPort}/readyz`)).ok,
    120_000,
    100,
  );
  return { pid: daemon.pid, metricsPort, stop };
}
