// The image as deployed: the image `make image` builds, run as deploy/controller/daemonset.yaml
// says — both containers, their command, args, env (NODE_NAME from the node), mounts, user,
// read-only root and dropped capabilities, translated from the YAML by daemonset-podman.ts — by
// podman on this machine, against the run's real API server, Ceph cluster and system libvirtd
// with a real QEMU guest. The pod shares the host's network: the test services are on loopback.
//
// The RBAC and the namespace are applied with `kubectl apply -k deploy/`, the Ceph identity is
// the Secret deploy/README.md tells users to create, and the agent authenticates with its
// service account's token, as a kubelet would mount it.
import { expect } from "chai";
import { randomBytes } from "node:crypto";
import { readFileSync, rmSync, statSync } from "node:fs";
import { join } from "node:path";
import { parseAllDocuments } from "yaml";
import { getCephCluster, type CephCluster } from "../support/ceph/cluster.ts";
import { REPO_ROOT, getControlPlane, type ControlPlane } from "../support/kube/control-plane.ts";
import { planPod, podTemplateOf, type PodTemplate } from "../support/image/daemonset-podman.ts";
import { makeImage } from "../support/image/make-image.ts";
import { podFolders, podman, startPod, type RunningPod } from "../support/image/daemonset-pod.ts";
import { createRbdGuestDisk, guestImage, launchGuest, type Guest } from "../support/guest/index.ts";
import { domainState, freezeStatus, useLibvirtd } from "../support/libvirt/libvirtd.ts";
import { portFree, waitFor } from "../support/processes.ts";
import { CEPH_SECRET, createCephSecret } from "../support/kube/ceph-secret.ts";
import { vmsnapshotsIn, type VMSnapshots } from "../support/kube/vmsnapshots.ts";

const DAEMONSET = join(REPO_ROOT, "deploy/controller/daemonset.yaml");
const NAMESPACE = "vmsnap-system";
const BOOT_TIMEOUT_MS = 120_000;

describe("the agent image run as the DaemonSet says (podman, real apiserver, Ceph and QEMU guest)", function () {
  this.timeout(180_000);
  let cp: ControlPlane;
  let ceph: CephCluster;
  let template: PodTemplate;
  let pod: RunningPod;
  let guest: Guest;
  let snapshots: VMSnapshots;
  let nodeName: string;
  const memoryFiles: string[] = [];

  before(async function () {
    // A fresh machine builds the image here (cached afterwards: a few seconds).
    this.timeout(3_600_000);
    const { summary } = await makeImage();
    console.log(indent(summary.join("\n")));

    template = podTemplateOf(
      parseAllDocuments(readFileSync(DAEMONSET, "utf8"), { version: "1.1" }).map((d) => d.toJS()),
    );
    [cp, ceph] = await Promise.all([
      getControlPlane(),
      getCephCluster(),
      useLibvirtd(),
      guestImage(),
    ]);
    const applied = await cp.kubectl(["apply", "-k", join(REPO_ROOT, "deploy")]);
    if (applied.code !== 0) throw new Error(`kubectl apply -k deploy/: ${applied.stderr}`);
    // The Secret as deploy/README.md has users create it, read back as the kubelet would.
    await createCephSecret(cp, ceph, NAMESPACE);
    const secrets = { [CEPH_SECRET]: await secretData(cp, CEPH_SECRET) };
    const serviceAccount = template.spec.serviceAccountName ?? "default";
    nodeName = `hv-pod-${randomBytes(3).toString("hex")}`;
    const podName = `vmsnap-controller-${randomBytes(3).toString("hex")}`;
    // The Pod object a scheduler would have bound to the node: the kubelet's projected token is
    // bound to it, so it carries the node name deploy/tenancy's agent-own-node policy checks.
    const podObject = await cp.kubectl(
      ["apply", "-f", "-"],
      JSON.stringify({
        apiVersion: "v1",
        kind: "Pod",
        metadata: { name: podName, namespace: NAMESPACE },
        spec: {
          nodeName,
          serviceAccountName: serviceAccount,
          automountServiceAccountToken: false,
          containers: [{ name: "controller", image: "localhost/vmsnap-controller" }],
        },
      }),
    );
    if (podObject.code !== 0) throw new Error(`creating the Pod object: ${podObject.stderr}`);
    const token = await cp.kubectl([
      "-n",
      NAMESPACE,
      "create",
      "token",
      serviceAccount,
      "--duration=2h",
      "--bound-object-kind=Pod",
      `--bound-object-name=${podName}`,
    ]);
    if (token.code !== 0) throw new Error(`kubectl create token: ${token.stderr}`);
    const api = new URL(cp.server);

    const folders = podFolders(podName);
    const plan = planPod(template, {
      podName,
      namespace: NAMESPACE,
      nodeName,
      ...folders,
      secrets,
      serviceAccount: {
        token: token.stdout.trim(),
        caCrt: readFileSync(cp.kubeConfig().getCurrentCluster()!.caFile!, "utf8"),
        apiHost: api.hostname,
        apiPort: Number(api.port),
      },
    });
    const metricsPort = plan.containers.find((c) => c.specName === "controller")?.ports.metrics;
    if (metricsPort !== undefined && !(await portFree(metricsPort)))
      throw new Error(`port ${metricsPort} (the DaemonSet's metrics port) is taken on this host`);

    const namespace = await cp.newNamespace("pod");
    const rbd = await createRbdGuestDisk(ceph);
    [pod, guest] = await Promise.all([
      startPod(plan, folders),
      launchGuest({ label: "pod", fileDisks: 1, rbdDisks: [rbd], owners: [namespace] }),
    ]);
    snapshots = vmsnapshotsIn({ cp, namespace, nodeName, controllerLog: () => lastLog });
    await guest.waitForAgent(BOOT_TIMEOUT_MS);
  });

  let lastLog = "";
  afterEach(async () => {
    lastLog = pod ? await pod.logs("controller").catch(() => "") : "";
  });

  after(async function () {
    this.timeout(180_000);
    ceph?.resumeMon();
    if (this.currentTest?.state === "failed" && pod) {
      console.error(`--- controller ---\n${(await pod.logs("controller")).slice(-6000)}`);
      console.error(`--- thaw-guard ---\n${(await pod.logs("thaw-guard")).slice(-3000)}`);
    }
    await pod?.remove();
    await guest?.remove();
    for (const f of memoryFiles) rmSync(f, { force: true });
  });

  /** Applies a VMSnapshot of the guest and waits for its end. */
  async function snapshot(name: string, spec: Parameters<VMSnapshots["apply"]>[1]) {
    await snapshots.apply(name, spec, guest.name);
    return snapshots.waitFinal(name, 120_000);
  }

  it("runs each container with the YAML's user, read-only root, no capabilities, no new privileges, and NODE_NAME from the node", async () => {
    for (const c of [...(template.spec.initContainers ?? []), ...template.spec.containers]) {
      const { pid, status } = await pod.state(c.name);
      expect(status, c.name).to.equal("running");
      const proc = readFileSync(`/proc/${pid}/status`, "utf8");
      const field = (f: string) => new RegExp(`^${f}:\\s*(.*)$`, "m").exec(proc)?.[1]?.trim();
      expect(field("Uid")?.split(/\s+/)[0], `${c.name} uid`).to.equal(
        String(c.securityContext!.runAsUser),
      );
      expect(field("CapEff"), `${c.name}: every capability dropped`).to.equal("0000000000000000");
      expect(field("CapBnd"), `${c.name}: nothing to regain`).to.equal("0000000000000000");
      expect(field("NoNewPrivs"), c.name).to.equal("1");
      expect(field("Seccomp"), `${c.name}: a seccomp filter`).to.equal("2");
      const write = await podman([
        "exec",
        pod.container(c.name).name,
        "/bin/sh",
        "-c",
        "touch /probe",
      ]);
      expect(write.stderr, `${c.name}: the root filesystem`).to.match(/Read-only file system/);
      const cmdline = readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0").filter(Boolean);
      expect(cmdline.slice(-(c.args ?? []).length), `${c.name} args`).to.deep.equal(c.args ?? []);
    }
    const { pid } = await pod.state("controller");
    const environ = readFileSync(`/proc/${pid}/environ`, "utf8").split("\0");
    expect(environ).to.include(`NODE_NAME=${nodeName}`);
  });

  it("takes a disk snapshot of the guest, quiesced, on its qcow2 and RBD disks", async () => {
    const done = await snapshot("disk", { quiesce: "Required" });
    expect(done.status?.phase, JSON.stringify(done.status?.error)).to.equal("Succeeded");
    const backends = done.status!.disks!.map((d) => d.backend).sort();
    expect(backends).to.deep.equal(["libvirt-file", "rbd"]);
    expect(done.status!.indications).to.include("Quiesced");
    expect(await freezeStatus(guest.name)).to.equal("thawed");
  });

  it("takes a memory snapshot into the DaemonSet's hostPath memory folder", async () => {
    const done = await snapshot("memory", { memory: true, quiesce: "Required" });
    expect(done.status?.phase, JSON.stringify(done.status?.error)).to.equal("Succeeded");
    const file = done.status!.memory!.file;
    memoryFiles.push(file);
    const memoryDir = hostPathOf(template, "memory-images");
    expect(file.startsWith(`${memoryDir}/`), file).to.equal(true);
    const image = statSync(file);
    expect((image.mode & 0o777).toString(8)).to.equal("600");
    expect(image.size)
      .to.equal(done.status!.memory!.bytes)
      .and.be.above(16 * 1048576);
    expect(await domainState(guest.name)).to.equal("running");
    expect(await freezeStatus(guest.name)).to.equal("thawed");
  });

  it("answers /metrics on the container's metrics port, counting both snapshots", async () => {
    const port = pod.container("controller").ports.metrics!;
    const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
    const succeeded = /^vmsnap_snapshots_total\{[^}]*result="succeeded"[^}]*\} (\d+)/m.exec(text);
    expect(Number(succeeded?.[1]), "vmsnap_snapshots_total{result=succeeded}").to.be.at.least(2);
    for (const probe of Object.values(pod.container("controller").probes))
      expect(
        (await fetch(`http://127.0.0.1:${probe!.port}${probe!.path}`)).status,
        probe!.path,
      ).to.equal(200);
  });

  it("thaws the guest from the guard container when the controller container is killed while it is frozen", async () => {
    const name = "killed";
    // The disk step hangs on a stopped Ceph monitor (a new rbd client cannot connect), so the
    // guest is still frozen when the kill comes. Not the OSD: the guest's own RBD disk is served
    // by it, and a guest whose I/O hangs cannot thaw (its agent's FITHAW waits on that I/O).
    const stall = await snapshots.watchFor(
      name,
      (o) => o.status?.freezeDeadline !== undefined,
      () => ceph.pauseMon(),
    );
    const frozen = await snapshots.watchFor(name, (o) => o.status?.phase === "Frozen");
    let thawMs: number;
    try {
      await snapshots.apply(name, { quiesce: "Required", freezeTimeout: "60s" }, guest.name);
      await frozen.seen;
      expect(await freezeStatus(guest.name), "frozen when the controller dies").to.equal("frozen");
      const killedAt = Date.now();
      await pod.kill("controller", "SIGKILL");
      await waitFor(
        "the guest thawed",
        async () => (await freezeStatus(guest.name)) === "thawed",
        10_000,
        50,
      );
      thawMs = Date.now() - killedAt;
    } finally {
      stall.stop();
      frozen.stop();
      ceph.resumeMon();
    }
    console.log(
      `      controller container SIGKILLed while frozen: guest thawed ${thawMs} ms later`,
    );
    expect((await pod.state("thaw-guard")).status, "the guard lives on").to.equal("running");
    expect((await pod.state("controller")).status).to.equal("exited");
    expect(await pod.logs("thaw-guard")).to.match(/fired|thaw/);
    // The kubelet restarts the controller; the new one finishes or fails the snapshot it left.
    await pod.restart("controller");
    const done = await snapshots.waitFinal(name, 120_000);
    expect(done.status?.phase).to.be.oneOf(["Succeeded", "Failed"]);
    expect(await freezeStatus(guest.name)).to.equal("thawed");
  });

  it("stops like a pod: SIGTERM to the controller mid-freeze, then the guard; nothing is left frozen", async () => {
    const name = "stopped";
    const stall = await snapshots.watchFor(
      name,
      (o) => o.status?.freezeDeadline !== undefined,
      () => ceph.pauseMon(),
    );
    const frozen = await snapshots.watchFor(name, (o) => o.status?.phase === "Frozen");
    let took: Record<string, number>;
    try {
      await snapshots.apply(name, { quiesce: "Required", freezeTimeout: "60s" }, guest.name);
      await frozen.seen;
      expect(await freezeStatus(guest.name), "frozen when the pod stops").to.equal("frozen");
      took = await pod.stop();
    } finally {
      stall.stop();
      frozen.stop();
      ceph.resumeMon();
    }
    console.log(
      `      pod stop: controller ${took.controller} ms, then thaw-guard ${took["thaw-guard"]} ms`,
    );
    expect(await freezeStatus(guest.name)).to.equal("thawed");
    expect(await domainState(guest.name)).to.equal("running");
    for (const c of ["controller", "thaw-guard"]) {
      const state = await pod.state(c);
      expect(state.status, c).to.equal("exited");
      expect(state.exitCode, `${c} exits by itself on SIGTERM, not by SIGKILL`).to.not.equal(137);
    }
    expect(took.controller, "the controller drained within the grace period").to.be.below(
      pod.plan.terminationGracePeriodSeconds * 1000,
    );
  });
});

async function secretData(cp: ControlPlane, name: string): Promise<Record<string, string>> {
  const got = await cp.kubectl(["-n", NAMESPACE, "get", "secret", name, "-o", "json"]);
  if (got.code !== 0) throw new Error(`kubectl get secret ${name}: ${got.stderr}`);
  const data = (JSON.parse(got.stdout) as { data: Record<string, string> }).data;
  return Object.fromEntries(
    Object.entries(data).map(([k, v]) => [k, Buffer.from(v, "base64").toString("utf8")]),
  );
}

function hostPathOf(template: PodTemplate, volume: string): string {
  const path = template.spec.volumes?.find((v) => v.name === volume)?.hostPath?.path;
  if (!path) throw new Error(`the DaemonSet has no hostPath volume ${volume}`);
  return path;
}

function indent(text: string): string {
  return text
    .split("\n")
    .map((l) => `      ${l}`)
    .join("\n");
}
