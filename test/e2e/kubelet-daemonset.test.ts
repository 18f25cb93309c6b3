// The DaemonSet on a real one-node cluster: `kubectl apply -k` of an overlay of deploy/ (the
// image `make image` built, host network), and from there only Kubernetes' own components act —
// kube-controller-manager's DaemonSet controller creates the pod, kube-scheduler binds it to the
// node labelled as deploy/README.md says, and a kubelet runs it through containerd: the guard as
// a native sidecar, the controller with the kubelet's projected service-account token, probes,
// Secret and hostPath volumes. The agent then snapshots a real QEMU guest on Ceph RBD.
//
// All of it built here (`make control-plane`: kubelet, scheduler and controller-manager from the
// apiserver's Go module) and run on this machine's cgroup v1 without systemd; what that takes is
// in test/support/node/ and docs/image-facts.md. Where it differs from image-daemonset.test.ts:
// that test runs the containers with podman and plays the kubelet itself; this one has no
// stand-in left, and checks what only a kubelet shows.
import { expect } from "chai";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { parseAllDocuments } from "yaml";
import { getCephCluster, type CephCluster } from "../support/ceph/cluster.ts";
import { REPO_ROOT, getControlPlane, type ControlPlane } from "../support/kube/control-plane.ts";
import { createCephSecret } from "../support/kube/ceph-secret.ts";
import { podTemplateOf, type PodTemplate } from "../support/image/daemonset-podman.ts";
import { makeImage } from "../support/image/make-image.ts";
import { startOneNodeCluster, type OneNodeCluster } from "../support/node/cluster.ts";
import { writeDeployOverlay } from "../support/node/overlay.ts";
import { createRbdGuestDisk, guestImage, launchGuest, type Guest } from "../support/guest/index.ts";
import { freezeStatus, useLibvirtd } from "../support/libvirt/libvirtd.ts";
import { portFree, waitFor } from "../support/processes.ts";
import { vmsnapshotsIn, type VMSnapshots } from "../support/kube/vmsnapshots.ts";

const DAEMONSET = join(REPO_ROOT, "deploy/controller/daemonset.yaml");
const NAMESPACE = "vmsnap-system";
const BOOT_TIMEOUT_MS = 120_000;
const POD_READY_TIMEOUT_MS = 90_000;

interface PodObject {
  metadata: { name: string; uid: string };
  spec: { nodeName?: string; hostNetwork?: boolean };
  status: {
    phase?: string;
    conditions?: { type: string; status: string }[];
    initContainerStatuses?: ContainerStatus[];
    containerStatuses?: ContainerStatus[];
  };
}

interface ContainerStatus {
  name: string;
  ready: boolean;
  started?: boolean;
  restartCount: number;
  image: string;
  state: { running?: { startedAt: string } };
}

describe("the DaemonSet on a one-node cluster: containerd, kubelet, scheduler and controller-manager (real Ceph and QEMU guest)", function () {
  this.timeout(180_000);
  let cp: ControlPlane;
  let ceph: CephCluster;
  let template: PodTemplate;
  let daemonSetName: string;
  let selector: string;
  let cluster: OneNodeCluster;
  let guest: Guest | undefined;
  let booting: Promise<Guest> | undefined;
  let snapshots: VMSnapshots;
  let pod: PodObject;
  let image: string;
  const timings: string[] = [];

  before(async function () {
    // A fresh machine builds the image here (cached afterwards: a few seconds).
    this.timeout(3_600_000);
    image = (await makeImage()).ref;

    const documents = parseAllDocuments(readFileSync(DAEMONSET, "utf8"), { version: "1.1" }).map(
      (d) => d.toJS() as { metadata: { name: string } },
    );
    template = podTemplateOf(documents);
    daemonSetName = documents[0]!.metadata.name;
    selector = Object.entries(template.metadata?.labels ?? {})
      .map(([k, v]) => `${k}=${v}`)
      .join(",");

    [cp, ceph] = await Promise.all([
      getControlPlane(),
      getCephCluster(),
      useLibvirtd(),
      guestImage(),
    ]);
    const started = Date.now();
    const namespace = await cp.newNamespace("kubelet");
    const rbd = await createRbdGuestDisk(ceph);
    // The guest boots while the node comes up; both take tens of seconds.
    booting = launchGuest({ label: "kubelet", fileDisks: 1, rbdDisks: [rbd], owners: [namespace] });
    // The node carries the label the DaemonSet selects, as deploy/README.md's step 1 sets it.
    cluster = await startOneNodeCluster(cp, { nodeLabels: template.spec.nodeSelector ?? {} });
    // Checked after the start, which has cleaned up a crashed run's node and its pod.
    const metricsPort = template.spec.containers
      .flatMap((c) => c.ports ?? [])
      .find((p) => p.name === "metrics")?.containerPort;
    if (metricsPort !== undefined && !(await portFree(metricsPort)))
      throw new Error(`port ${metricsPort} (the DaemonSet's metrics port) is taken on this host`);
    timings.push(
      `containerd ${cluster.timings.containerd} ms, node Ready ${cluster.timings["node Ready"]} ms`,
    );
    const importStart = Date.now();
    await cluster.containerd.importImage(image);
    timings.push(`${image} imported into containerd in ${Date.now() - importStart} ms`);

    const applied = await cp.kubectl([
      "apply",
      "-k",
      writeDeployOverlay(join(cluster.runDir, "overlay"), {
        template,
        daemonSetName,
        image,
        server: cp.server,
      }),
    ]);
    if (applied.code !== 0)
      throw new Error(`kubectl apply -k (overlay of deploy/): ${applied.stderr}`);
    await createCephSecret(cp, ceph, NAMESPACE);
    const applyDone = Date.now();
    await waitFor(
      "the DaemonSet's pod Ready",
      async () => (await agentPod())?.ready === true,
      POD_READY_TIMEOUT_MS,
      500,
    ).catch(async (err: Error) => {
      throw new Error(`${err.message}\n${await podDiagnostics()}`);
    });
    pod = (await agentPod())!.pod;
    timings.push(`pod Ready ${Date.now() - applyDone} ms after kubectl apply -k and the Secret`);

    guest = await booting;
    snapshots = vmsnapshotsIn({
      cp,
      namespace,
      nodeName: cluster.nodeName,
      controllerLog: () => cluster.podLog(NAMESPACE, pod.metadata.name, "controller"),
    });
    await guest.waitForAgent(BOOT_TIMEOUT_MS);
    timings.push(`cluster and guest ready ${Date.now() - started} ms after the node's start`);
  });

  after(async function () {
    this.timeout(240_000);
    if (timings.length > 0) console.log(timings.map((t) => `      ${t}`).join("\n"));
    if (this.currentTest?.state === "failed" && cluster && pod) {
      const log = (c: string) => cluster.podLog(NAMESPACE, pod.metadata.name, c).slice(-4000);
      console.error(
        `--- controller ---\n${log("controller")}\n--- thaw-guard ---\n${log("thaw-guard")}`,
      );
    }
    if (cluster) {
      // Without the garbage collector a DaemonSet's pods outlive it: delete both, and let the
      // kubelet stop the pod within its grace period before the node goes.
      await cp.kubectl([
        "-n",
        NAMESPACE,
        "delete",
        "daemonset",
        daemonSetName,
        "--ignore-not-found",
      ]);
      await cp.kubectl(["-n", NAMESPACE, "delete", "pods", "-l", selector, "--timeout=150s"]);
      const cleaned = await cluster.stop();
      if (cleaned.length > 0) console.log(`      node clean-up: ${cleaned.join("; ")}`);
    }
    await (guest ?? (await booting?.catch(() => undefined)))?.remove();
  });

  /** The DaemonSet's pod on the node, and whether the kubelet reports it Ready. */
  async function agentPod(): Promise<{ pod: PodObject; ready: boolean } | undefined> {
    const got = await cp.kubectl(["-n", NAMESPACE, "get", "pods", "-l", selector, "-o", "json"]);
    if (got.code !== 0) return undefined;
    const found = (JSON.parse(got.stdout) as { items: PodObject[] }).items[0];
    if (!found) return undefined;
    const ready = found.status.conditions?.some((c) => c.type === "Ready" && c.status === "True");
    return { pod: found, ready: ready === true };
  }

  async function podDiagnostics(): Promise<string> {
    const events = await cp.kubectl(["-n", NAMESPACE, "get", "events", "--sort-by=.lastTimestamp"]);
    const current = await agentPod();
    const logs = current
      ? ["thaw-guard", "controller"].map(
          (c) =>
            `--- ${c} ---\n${cluster.podLog(NAMESPACE, current.pod.metadata.name, c).slice(-2000)}`,
        )
      : [];
    return [events.stdout.slice(-4000), JSON.stringify(current?.pod.status ?? {}), ...logs].join(
      "\n",
    );
  }

  it("is created by the DaemonSet controller, bound to the labelled node by the scheduler, and made Ready by the kubelet: the guard as a native sidecar started before the controller", async () => {
    expect(pod.spec.nodeName).to.equal(cluster.nodeName);
    expect(pod.spec.hostNetwork).to.equal(true);
    const guard = pod.status.initContainerStatuses?.find((c) => c.name === "thaw-guard");
    const controller = pod.status.containerStatuses?.find((c) => c.name === "controller");
    expect(guard?.started, "the sidecar keeps running").to.equal(true);
    expect(controller?.ready, "the readiness probe on /readyz").to.equal(true);
    for (const c of [guard!, controller!]) {
      expect(c.restartCount, `${c.name} restarts`).to.equal(0);
      expect(c.image, c.name).to.equal(image);
    }
    expect(Date.parse(guard!.state.running!.startedAt), "the sidecar starts first").to.be.at.most(
      Date.parse(controller!.state.running!.startedAt),
    );
    const ds = await cp.kubectl(["-n", NAMESPACE, "get", "daemonset", daemonSetName, "-o", "json"]);
    const status = (JSON.parse(ds.stdout) as { status: Record<string, number> }).status;
    expect(status.desiredNumberScheduled).to.equal(1);
    expect(status.numberReady).to.equal(1);
  });

  it("gives the controller the kubelet's projected token, bound to its pod and its node", () => {
    const volumes = join(cluster.kubelet.rootDir, "pods", pod.metadata.uid, "volumes");
    const token = readFileSync(
      join(volumes, "kubernetes.io~projected", "api-token", "token"),
      "utf8",
    );
    const claims = JSON.parse(Buffer.from(token.split(".")[1]!, "base64url").toString()) as {
      sub: string;
      "kubernetes.io": { pod: { name: string }; node?: { name: string } };
    };
    expect(claims.sub).to.equal(
      `system:serviceaccount:${NAMESPACE}:${template.spec.serviceAccountName}`,
    );
    expect(claims["kubernetes.io"].pod.name).to.equal(pod.metadata.name);
    // What deploy/tenancy/agent-own-node.yaml checks on every write the agent makes.
    expect(claims["kubernetes.io"].node?.name).to.equal(cluster.nodeName);
  });

  it("takes a quiesced snapshot of the guest's qcow2 and RBD disks: Succeeded", async () => {
    const took = Date.now();
    await snapshots.apply("disk", { quiesce: "Required" }, guest!.name);
    const done = await snapshots.waitFinal("disk", 120_000);
    timings.push(`snapshot Succeeded ${Date.now() - took} ms after kubectl apply`);
    expect(done.status?.phase, JSON.stringify(done.status?.error)).to.equal("Succeeded");
    expect(done.status!.disks!.map((d) => d.backend).sort()).to.deep.equal(["libvirt-file", "rbd"]);
    expect(done.status!.indications).to.include("Quiesced");
    expect(await freezeStatus(guest!.name)).to.equal("thawed");
  });

  it("stops like a pod when deleted: SIGTERM reaches the guard only after the controller has exited, both within the grace period", async () => {
    // The DaemonSet first, or its controller would replace the pod.
    const ds = await cp.kubectl(["-n", NAMESPACE, "delete", "daemonset", daemonSetName]);
    expect(ds.code, ds.stderr).to.equal(0);
    const name = pod.metadata.name;
    // The kubelet removes a container's log with the container, possibly between two looks:
    // each log is held open from before the delete, so its last lines stay readable.
    const open = Object.fromEntries(
      ["controller", "thaw-guard"].map((c) => [c, cluster.openPodLog(NAMESPACE, name, c)]),
    );
    const seen: Record<string, string> = {};
    const keepLogs = () => {
      for (const [c, log] of Object.entries(open)) seen[c] = log?.read() ?? "";
    };
    const deleting = cp.kubectl(["-n", NAMESPACE, "delete", "pod", name, "--wait=false"]);
    const deletedAt = Date.now();
    expect((await deleting).code).to.equal(0);
    await waitFor(
      "the pod object gone",
      async () => {
        keepLogs();
        const got = await cp.kubectl(["-n", NAMESPACE, "get", "pod", name, "--ignore-not-found"]);
        return got.code === 0 && got.stdout.trim() === "";
      },
      (template.spec.terminationGracePeriodSeconds ?? 30) * 1000 + 30_000,
      200,
    );
    const tookMs = Date.now() - deletedAt;
    keepLogs();
    for (const log of Object.values(open)) log?.close();
    timings.push(`pod deleted: gone ${tookMs} ms later`);
    const controller = logEntries(seen.controller ?? "");
    const guard = logEntries(seen["thaw-guard"] ?? "");
    const shutdown = controller.find((e) => e.msg === "shutting down");
    const guardStop = guard.find((e) => e.msg === "stopping");
    expect(shutdown?.fields.signal, "the controller got SIGTERM").to.equal("SIGTERM");
    expect(guardStop?.fields.why, "the guard got SIGTERM").to.equal("SIGTERM");
    const controllerLast = controller.at(-1)!;
    const gapMs = Number(guardStop!.at - controllerLast.at) / 1e6;
    timings.push(
      `controller SIGTERM to its last line ${Number(controllerLast.at - shutdown!.at) / 1e6} ms, then ${gapMs} ms to the guard's SIGTERM`,
    );
    expect(
      gapMs,
      `the guard's SIGTERM after the controller's last line (${controllerLast.msg})`,
    ).to.be.at.least(0);
    expect(tookMs).to.be.below((template.spec.terminationGracePeriodSeconds ?? 30) * 1000);
  });
});

/** A container's JSON log lines from its CRI log file, with the kubelet's timestamps (ns). */
function logEntries(cri: string): { at: bigint; msg: string; fields: Record<string, unknown> }[] {
  return cri.split("\n").flatMap((line) => {
    const [time, , , ...rest] = line.split(" ");
    const m = /^(.*T[\d:]+)(?:\.(\d+))?Z$/.exec(time ?? "");
    if (!m) return [];
    try {
      const fields = JSON.parse(rest.join(" ")) as Record<string, unknown>;
      const ns = BigInt(Date.parse(`${m[1]}Z`)) * 1_000_000n + BigInt((m[2] ?? "0").padEnd(9, "0"));
      return [{ at: ns, msg: String(fields.msg), fields }];
    } catch {
      return [];
    }
  });
}
