// The DaemonSet-to-podman translation the image test relies on: it must carry every setting of
// the deployed pod into `podman run`, read the manifest as Kubernetes does (YAML 1.1), and refuse
// what it cannot carry rather than drop it.
import { expect } from "chai";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { parseAllDocuments } from "yaml";
import { REPO_ROOT } from "../../support/kube/control-plane.ts";
import {
  bytes,
  planPod,
  podTemplateOf,
  type NodeContext,
  type PodTemplate,
} from "../../support/image/daemonset-podman.ts";

const NODE: NodeContext = {
  podName: "p",
  namespace: "ns",
  nodeName: "hv-7",
  podDir: "/pods/p",
  podMemoryDir: "/shm/p",
  secrets: { "vmsnap-ceph": { "ceph.conf": "[global]\n", keyring: "[client.vmsnap]\n" } },
  serviceAccount: { token: "tok", caCrt: "ca", apiHost: "127.0.0.1", apiPort: 6443 },
};

function deployed(): PodTemplate {
  const text = readFileSync(join(REPO_ROOT, "deploy/controller/daemonset.yaml"), "utf8");
  return podTemplateOf(parseAllDocuments(text, { version: "1.1" }).map((d) => d.toJS()));
}

/** The value of every `--flag=value` (or `--flag value`) occurrence in argv. */
function values(argv: readonly string[], flag: string): string[] {
  const out: string[] = [];
  argv.forEach((a, i) => {
    if (a === flag) out.push(argv[i + 1]!);
    else if (a.startsWith(`${flag}=`)) out.push(a.slice(flag.length + 1));
  });
  return out;
}

describe("translating the deployed DaemonSet into podman runs", () => {
  const plan = planPod(deployed(), NODE);
  const guard = plan.containers.find((c) => c.specName === "thaw-guard")!;
  const controller = plan.containers.find((c) => c.specName === "controller")!;

  it("starts the native sidecar before the controller", () => {
    expect(plan.containers.map((c) => [c.specName, c.sidecar])).to.deep.equal([
      ["thaw-guard", true],
      ["controller", false],
    ]);
  });

  it("runs each as root with no capability, no new privileges and a read-only root without podman's tmpfs", () => {
    for (const c of [guard, controller]) {
      expect(values(c.argv, "--user"), c.specName).to.deep.equal(["0:0"]);
      expect(values(c.argv, "--cap-drop"), c.specName).to.deep.equal(["ALL"]);
      expect(values(c.argv, "--security-opt"), c.specName).to.deep.equal(["no-new-privileges"]);
      expect(c.argv, c.specName).to.include.members(["--read-only", "--read-only-tmpfs=false"]);
    }
  });

  it("gives NODE_NAME the node's name (downward API) and the literal variables as written", () => {
    const env = values(controller.argv, "--env");
    expect(env).to.include("NODE_NAME=hv-7");
    expect(env).to.include("CEPH_ARGS=--id vmsnap --keyring /etc/ceph/keyring");
    expect(env).to.include("KUBERNETES_SERVICE_PORT=6443");
  });

  it("overrides the guard's command and passes each container's args after the image", () => {
    expect(values(guard.argv, "--entrypoint")).to.deep.equal([
      JSON.stringify(["node", "dist/bundle/guard-main.js"]),
    ]);
    const image = guard.argv.indexOf("vmsnap-controller:0.1.0");
    expect(guard.argv.slice(image + 1)).to.deep.equal([
      "--listen=/run/vmsnap/guard.sock",
      "--uri=qemu:///system",
    ]);
    expect(values(controller.argv, "--entrypoint"), "the image's ENTRYPOINT").to.deep.equal([]);
  });

  it("shares one guard-socket folder between both containers, on a tmpfs (medium Memory)", () => {
    const socketMount = (argv: string[]) =>
      values(argv, "--mount").find((m) => m.endsWith("dst=/run/vmsnap"));
    expect(socketMount(guard.argv)).to.equal(socketMount(controller.argv));
    expect(socketMount(guard.argv)).to.match(/^type=bind,src=\/shm\/p\//);
  });

  it("writes the Ceph Secret's two items with defaultMode 0400, read as YAML 1.1 (octal) as kubectl does", () => {
    const ceph = plan.files.filter((f) => f.path.startsWith("/pods/p/secret/ceph/"));
    expect(ceph.map((f) => [f.path, f.mode.toString(8)])).to.deep.equal([
      ["/pods/p/secret/ceph/ceph.conf", "400"],
      ["/pods/p/secret/ceph/keyring", "400"],
    ]);
    expect(values(controller.argv, "--mount")).to.include(
      "type=bind,src=/pods/p/secret/ceph,dst=/etc/ceph,ro=true",
    );
  });

  it("mounts the host's libvirt socket folder, which must exist, and creates the memory folder", () => {
    expect(plan.directories).to.deep.include({ path: "/var/run/libvirt", mustExist: true });
    expect(plan.directories).to.deep.include({ path: "/var/lib/vmsnap/memory", mustExist: false });
  });

  it("limits memory as the YAML does and finds the probes' port by name", () => {
    expect(values(controller.argv, "--memory")).to.deep.equal([`${512 * 2 ** 20}b`]);
    expect(controller.probes.readiness).to.deep.equal({ path: "/readyz", port: 8080 });
  });

  it("lets a pod stop take the whole grace period", () => {
    expect(plan.terminationGracePeriodSeconds).to.equal(120);
  });
});

describe("refusing what the translation cannot honour", () => {
  const withController = (patch: (t: PodTemplate) => void): (() => unknown) => {
    const t = deployed();
    patch(t);
    return () => planPod(t, NODE);
  };

  it("refuses an env value from a field it does not know", () => {
    expect(
      withController((t) =>
        t.spec.containers[0]!.env!.push({
          name: "IP",
          valueFrom: { fieldRef: { fieldPath: "status.podIP" } },
        }),
      ),
    ).to.throw(/env IP/);
  });

  it("refuses a hostPath type it does not check (Socket)", () => {
    const firstHostPath = (t: PodTemplate) => t.spec.volumes!.find((v) => v.hostPath)!.hostPath!;
    expect(withController((t) => (firstHostPath(t).type = "Socket"))).to.throw(
      /hostPath type Socket/,
    );
  });

  it("refuses an init container that would run to completion", () => {
    expect(withController((t) => delete t.spec.initContainers![0]!.restartPolicy)).to.throw(
      /only native sidecars/,
    );
  });

  it("refuses a container field it does not translate (a preStop hook)", () => {
    expect(
      withController((t) =>
        Object.assign(t.spec.containers[0]!, {
          lifecycle: { preStop: { exec: { command: ["x"] } } },
        }),
      ),
    ).to.throw(/container controller: lifecycle not translated/);
  });

  it("projects the deployed service-account token volume as the kubelet would: token, cluster CA, namespace", () => {
    const files = planPod(deployed(), NODE).files.filter((f) =>
      f.path.startsWith("/pods/p/projected/"),
    );
    expect(files.map((f) => [f.path, f.content])).to.deep.equal([
      ["/pods/p/projected/api-token/token", "tok"],
      ["/pods/p/projected/api-token/ca.crt", "ca"],
      ["/pods/p/projected/api-token/namespace", "ns"],
    ]);
  });

  it("refuses a Secret the node does not have", () => {
    expect(() => planPod(deployed(), { ...NODE, secrets: {} })).to.throw(/no Secret vmsnap-ceph/);
  });

  it("reads memory quantities in binary and decimal units, and refuses others", () => {
    expect(bytes("256Mi")).to.equal(268435456);
    expect(bytes("1G")).to.equal(1e9);
    expect(() => bytes("1.5Gi")).to.throw(/not translated/);
  });
});
