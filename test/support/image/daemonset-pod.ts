// Runs a planned pod (daemonset-podman.ts) with podman, playing the kubelet's part: it lays out
// the pod's host folders and secret files, starts the native sidecars before the containers and
// waits for the readiness probe, and stops the pod as a kubelet does: SIGTERM to the containers,
// and only after they have exited, SIGTERM to the sidecars, all within one grace period.
// podman runs through tools/image/engine.sh, with the settings `make image` uses.
import { existsSync, mkdirSync, rmSync, writeFileSync, chmodSync } from "node:fs";
import { dirname, join } from "node:path";
import { REPO_ROOT, run, type CommandResult } from "../kube/control-plane.ts";
import type { ContainerRun, PodPlan } from "./daemonset-podman.ts";
import { waitFor } from "../processes.ts";

const ENGINE = join(REPO_ROOT, "tools/image/engine.sh");
/** A kubelet gives a sidecar at least this long after the main containers used up the grace. */
const SIDECAR_MIN_GRACE_S = 2;

/** `podman ARGS` through the project's engine settings; never throws on a non-zero exit. */
export function podman(args: readonly string[]): Promise<CommandResult> {
  return run(ENGINE, ["podman", ...args]);
}

async function podmanOk(args: readonly string[]): Promise<string> {
  const r = await podman(args);
  if (r.code !== 0) throw new Error(`podman ${args.join(" ")}: ${r.stderr.trim()}`);
  return r.stdout;
}

export interface ContainerState {
  readonly status: string;
  readonly exitCode: number;
  readonly pid: number;
}

export interface RunningPod {
  readonly plan: PodPlan;
  container(specName: string): ContainerRun;
  state(specName: string): Promise<ContainerState>;
  logs(specName: string): Promise<string>;
  /** `podman kill --signal`: what an OOM kill or a crash looks like from outside. */
  kill(specName: string, signal: NodeJS.Signals): Promise<void>;
  /** Starts an exited container again, as the kubelet's restart would; waits for readiness. */
  restart(specName: string): Promise<void>;
  /** Stops the pod as a kubelet does; resolves with how long each container took. */
  stop(): Promise<Record<string, number>>;
  /** Removes the containers and the pod's folders (after stop, or to clean up after a failure). */
  remove(): Promise<void>;
}

/** Lays out the pod's host side and starts its containers in order. */
export async function startPod(
  plan: PodPlan,
  pod: { podDir: string; podMemoryDir: string },
): Promise<RunningPod> {
  for (const d of plan.directories) {
    if (d.mustExist && !existsSync(d.path))
      throw new Error(`hostPath ${d.path} (type Directory) does not exist on this node`);
    mkdirSync(d.path, { recursive: true });
  }
  for (const f of plan.files) {
    mkdirSync(dirname(f.path), { recursive: true });
    writeFileSync(f.path, f.content);
    chmodSync(f.path, f.mode);
  }
  const byName = new Map(plan.containers.map((c) => [c.specName, c]));
  const container = (specName: string) => {
    const c = byName.get(specName);
    if (!c) throw new Error(`no container ${specName} in the pod`);
    return c;
  };
  const state = async (specName: string): Promise<ContainerState> => {
    const out = await podmanOk([
      "inspect",
      "--format",
      "{{.State.Status}} {{.State.ExitCode}} {{.State.Pid}}",
      container(specName).name,
    ]);
    const [status, exitCode, pid] = out.trim().split(" ");
    return { status: status!, exitCode: Number(exitCode), pid: Number(pid) };
  };
  const logs = async (specName: string) => {
    const r = await podman(["logs", container(specName).name]);
    return r.stdout + r.stderr;
  };
  const waitStarted = async (c: ContainerRun) => {
    await waitFor(
      `${c.specName} running`,
      async () => (await state(c.specName)).status === "running",
      30_000,
      100,
    ).catch(async (err: Error) => {
      throw new Error(
        `${err.message}\n--- ${c.specName} log ---\n${(await logs(c.specName)).slice(-4000)}`,
      );
    });
    const probe = c.probes.readiness;
    if (!probe) return;
    await waitFor(
      `${c.specName} readiness (${probe.path})`,
      async () => {
        if ((await state(c.specName)).status !== "running") throw new Error(`${c.specName} exited`);
        return (
          (await fetch(`http://127.0.0.1:${probe.port}${probe.path}`).catch(() => undefined))
            ?.ok === true
        );
      },
      60_000,
      200,
    ).catch(async (err: Error) => {
      throw new Error(
        `${err.message}\n--- ${c.specName} log ---\n${(await logs(c.specName)).slice(-4000)}`,
      );
    });
  };

  const removeAll = async () => {
    await podman(["rm", "--force", "--time=0", ...plan.containers.map((c) => c.name)]);
    rmSync(pod.podDir, { recursive: true, force: true });
    rmSync(pod.podMemoryDir, { recursive: true, force: true });
  };
  try {
    for (const c of plan.containers) {
      await podmanOk(c.argv);
      await waitStarted(c);
    }
  } catch (err) {
    await removeAll();
    throw err;
  }

  return {
    plan,
    container,
    state,
    logs,
    async kill(specName, signal) {
      await podmanOk(["kill", `--signal=${signal}`, container(specName).name]);
    },
    async restart(specName) {
      const c = container(specName);
      await podmanOk(["start", c.name]);
      await waitStarted(c);
    },
    async stop() {
      const took: Record<string, number> = {};
      const deadline = Date.now() + plan.terminationGracePeriodSeconds * 1000;
      const stopAll = async (group: ContainerRun[], graceS: number) =>
        Promise.all(
          group.map(async (c) => {
            const started = Date.now();
            await podmanOk(["stop", `--time=${graceS}`, c.name]);
            took[c.specName] = Date.now() - started;
          }),
        );
      // The containers first, then the sidecars in reverse start order (Kubernetes >= 1.29).
      await stopAll(
        plan.containers.filter((c) => !c.sidecar),
        plan.terminationGracePeriodSeconds,
      );
      for (const c of plan.containers.filter((c) => c.sidecar).reverse()) {
        const left = Math.ceil((deadline - Date.now()) / 1000);
        await stopAll([c], Math.max(left, SIDECAR_MIN_GRACE_S));
      }
      return took;
    },
    remove: removeAll,
  };
}

/** The pod's host folders: one on disk, one on a tmpfs for memory-backed emptyDirs. */
export function podFolders(podName: string): { podDir: string; podMemoryDir: string } {
  return { podDir: join("/tmp/vmsnap-pods", podName), podMemoryDir: join("/dev/shm", podName) };
}
