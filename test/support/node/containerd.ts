// containerd for a test's kubelet: Debian's containerd started in the foreground (no systemd)
// with its root, state, sockets and CNI configuration in the node's run folder, so it shares
// nothing with any other container engine on the machine. Images come from podman's storage
// (`make image` builds with buildah) through `podman save | ctr images import`, as
// deploy/README.md tells air-gapped users; there is no registry to pull from.
//
// Settings this machine needs, each measured (docs/image-facts.md, "A real kubelet"):
// - restrict_oom_score_adj: the test runs without CAP_SYS_RESOURCE, so runc may not lower a
//   sandbox's oom_score_adj to -998 (`runc create failed: ... can't get final child's PID from
//   pipe: EOF`); restricted, containerd never asks for less than its own score.
// - a pause image built here: the default, registry.k8s.io/pause, cannot be pulled. Debian's
//   static catatonit in pause mode (`-P`) is a whole pause image.
// - a CNI configuration: the agent pod uses the host network, but containerd reports
//   NetworkReady=false, and the kubelet keeps the node NotReady, until one is loaded.
import { spawn } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { REPO_ROOT, run, type CommandResult } from "../kube/control-plane.ts";
import { startDaemon, waitFor, type Daemon } from "../processes.ts";

const ENGINE = join(REPO_ROOT, "tools/image/engine.sh");
const CATATONIT = "/usr/bin/catatonit";
/** Named after what is in it; rebuilt only when missing from podman's storage. */
export const PAUSE_IMAGE = "localhost/vmsnap-pause:catatonit";
/** Where the kubelet's CRI looks; `ctr` must use the same namespace. */
const K8S_NAMESPACE = "k8s.io";
/** Debian's containernetworking-plugins. */
const CNI_BIN_DIR = "/usr/lib/cni";

export interface Containerd {
  readonly socket: string;
  readonly daemon: Daemon;
  /** `ctr -n k8s.io ARGS` against this containerd; never throws on a non-zero exit. */
  ctr(args: readonly string[]): Promise<CommandResult>;
  /** Copies an image from podman's storage into containerd's k8s.io namespace. */
  importImage(ref: string): Promise<void>;
  /** Kills and removes every task and container left in the k8s.io namespace. */
  removeAll(): Promise<void>;
}

/** Starts containerd with everything under `runDir`; the pause image is imported before use. */
export async function startContainerd(runDir: string): Promise<Containerd> {
  const socket = join(runDir, "containerd.sock");
  const cniDir = join(runDir, "cni");
  mkdirSync(cniDir, { recursive: true });
  // Never used by a host-network pod; it only makes containerd report the network ready.
  writeFileSync(
    join(cniDir, "10-vmsnap-test.conflist"),
    JSON.stringify({ cniVersion: "0.4.0", name: "vmsnap-test", plugins: [{ type: "loopback" }] }),
  );
  const config = join(runDir, "containerd.toml");
  writeFileSync(config, containerdConfig(runDir, socket, cniDir));
  const daemon = await startDaemon("containerd", "/usr/bin/containerd", ["--config", config], {
    runDir,
  });
  const ctr = (args: readonly string[]) =>
    run("/usr/bin/ctr", ["--address", socket, "--namespace", K8S_NAMESPACE, ...args]);
  try {
    // `ctr plugins ls` pads its columns: "io.containerd.grpc.v1  cri  linux/amd64  ok   ".
    await waitFor(
      "containerd's CRI plugin",
      async () => /\sok\s*$/m.test((await ctr(["plugins", "ls", "id==cri"])).stdout),
      30_000,
      200,
    );
    await ensurePauseImage();
    await importFromPodman(socket, PAUSE_IMAGE);
  } catch (err) {
    await daemon.stop();
    throw err;
  }
  return {
    socket,
    daemon,
    ctr,
    async importImage(ref) {
      await importFromPodman(socket, ref);
    },
    async removeAll() {
      for (const id of lines((await ctr(["tasks", "ls", "-q"])).stdout))
        await ctr(["tasks", "kill", "--signal", "SIGKILL", id]);
      for (const id of lines((await ctr(["containers", "ls", "-q"])).stdout)) {
        await ctr(["tasks", "rm", "--force", id]);
        await ctr(["containers", "rm", id]);
      }
    },
  };
}

function containerdConfig(runDir: string, socket: string, cniDir: string): string {
  return `# Written by test/support/node/containerd.ts.
version = 2
root = "${join(runDir, "containerd-root")}"
state = "${join(runDir, "containerd-state")}"
disabled_plugins = ["io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper"]
[grpc]
  address = "${socket}"
[ttrpc]
  address = "${socket}.ttrpc"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "${PAUSE_IMAGE}"
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "${CNI_BIN_DIR}"
    conf_dir = "${cniDir}"
  [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
    runtime_type = "io.containerd.runc.v2"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
      SystemdCgroup = false
`;
}

/** The pause image, from scratch: catatonit alone, in pause mode. */
async function ensurePauseImage(): Promise<void> {
  if ((await run(ENGINE, ["podman", "image", "exists", PAUSE_IMAGE])).code === 0) return;
  const buildah = async (args: readonly string[]) => {
    const r = await run(ENGINE, ["buildah", ...args]);
    if (r.code !== 0) throw new Error(`buildah ${args.join(" ")}: ${r.stderr.trim()}`);
    return r.stdout.trim();
  };
  const container = await buildah(["from", "scratch"]);
  try {
    await buildah(["copy", container, CATATONIT, "/pause"]);
    await buildah(["config", "--entrypoint", '["/pause","-P"]', "--cmd", "", container]);
    await buildah(["commit", "--quiet", container, PAUSE_IMAGE]);
  } finally {
    await run(ENGINE, ["buildah", "rm", container]);
  }
}

/** `podman save REF | ctr images import -`: no temporary archive of the ~0.5 GB image. */
function importFromPodman(socket: string, ref: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const save = spawn(ENGINE, ["podman", "save", "--format", "docker-archive", ref], {
      stdio: ["ignore", "pipe", "pipe"],
    });
    const load = spawn(
      "/usr/bin/ctr",
      ["--address", socket, "--namespace", K8S_NAMESPACE, "images", "import", "-"],
      { stdio: ["pipe", "ignore", "pipe"] },
    );
    save.stdout.pipe(load.stdin);
    let errors = "";
    save.stderr.on("data", (d: Buffer) => (errors += d.toString()));
    load.stderr.on("data", (d: Buffer) => (errors += d.toString()));
    const codes: number[] = [];
    const done = (code: number | null) => {
      codes.push(code ?? 1);
      if (codes.length < 2) return;
      if (codes.every((c) => c === 0)) resolve();
      else reject(new Error(`importing ${ref} into containerd: ${errors.trim().slice(-2000)}`));
    };
    save.once("close", done);
    load.once("close", done);
  });
}

function lines(text: string): string[] {
  return text.split("\n").filter((l) => l.trim() !== "");
}
