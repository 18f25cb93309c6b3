// The controller as deployed: compiled to JavaScript and run with plain `node dist/src/main.js`
// (the Dockerfile's entry point), not under tsx as the tests run it. The build goes to a folder
// outside the checkout (with links to node_modules and the native addon), so the work tree and
// its dist/ are left alone.
import { execFile } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { REPO_ROOT } from "../../test/support/control-plane.ts";
import { freePort, startDaemon, waitFor } from "../../test/support/processes.ts";
import { onTeardown } from "../../test/support/teardown.ts";

export interface CompiledController {
  readonly pid: number;
  readonly metricsPort: number;
  stop(): Promise<void>;
}

let built: Promise<string> | undefined;

/** Compiles src/ once per process into a temporary folder; resolves with that folder. */
export function buildController(): Promise<string> {
  built ??= (async () => {
    const out = mkdtempSync(join(tmpdir(), "vmsnap-bench-dist-"));
    onTeardown(() => rmSync(out, { recursive: true, force: true }));
    const tsconfig = join(out, "tsconfig.json");
    writeFileSync(
      tsconfig,
      JSON.stringify({
        extends: join(REPO_ROOT, "tsconfig.json"),
        compilerOptions: {
          outDir: join(out, "dist"),
          rootDir: REPO_ROOT,
          types: ["node"],
          sourceMap: false,
        },
        include: [join(REPO_ROOT, "src/**/*.ts")],
      }),
    );
    // Type errors elsewhere in a work tree being edited must not stop the emit.
    await promisify(execFile)(join(REPO_ROOT, "node_modules/.bin/tsc"), ["-p", tsconfig], {
      cwd: REPO_ROOT,
    }).catch((err: { stdout?: string }) => {
      if (!existsSync(join(out, "dist/src/main.js"))) throw err;
    });
    writeFileSync(join(out, "package.json"), JSON.stringify({ type: "module" }));
    symlinkSync(join(REPO_ROOT, "node_modules"), join(out, "node_modules"));
    mkdirSync(join(out, "native", "build"), { recursive: true });
    symlinkSync(join(REPO_ROOT, "native/build/Release"), join(out, "native/build/Release"));
    return out;
  })();
  return built;
}

/** Starts the compiled controller with the flags startController (test support) uses. */
export async function startCompiledController(flags: {
  kubeconfig: string;
  node: string;
  namespace: string;
  libvirtUri: string;
  storage: "real" | "sequential" | "noop";
}): Promise<CompiledController> {
  const out = await buildController();
  const runDir = mkdtempSync(join(tmpdir(), "vmsnap-bench-ctl-"));
  const metricsPort = await freePort();
  const args = [
    join(out, "dist/src/main.js"),
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
    cwd: out,
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
    "the compiled controller's /readyz",
    async () => (await fetch(`http://127.0.0.1:${metricsPort}/readyz`)).ok,
    120_000,
    100,
  );
  return { pid: daemon.pid, metricsPort, stop };
}
