// The controller as deployed: the bundle the image runs (tools/bundle.ts, built by
// test/support/controller/bundle.ts outside the checkout), under plain node with the runtime
// settings the deployment gives it (test/support/controller/deployed-runtime.ts) — not under tsx
// as the tests run it.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { bundleController } from "../../test/support/controller/bundle.ts";
import { deployedRuntime } from "../../test/support/controller/deployed-runtime.ts";

export { deployedRuntime };
import { freePort, startDaemon, waitFor } from "../../test/support/processes.ts";
import { onTeardown } from "../../test/support/teardown.ts";

export interface CompiledController {
  readonly pid: number;
  readonly metricsPort: number;
  stop(): Promise<void>;
}

/**
 * Starts the bundled controller (with the benchmark-only `--bench-storage`, bench/lib/bench-main.ts)
 * with the flags startController (test support) uses.
 */
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
    bundle.benchMain,
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
    // As startController (test support): test-driver domains carry no owner element.
    "--allow-unowned-domains=*",
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
