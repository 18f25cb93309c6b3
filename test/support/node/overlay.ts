// A kustomize overlay of deploy/ for the test's one-node cluster, written the way a user adapts
// the base (deploy/README.md): `images` points the DaemonSet at the image `make image` built,
// and a patch sets `hostNetwork: true` with `dnsPolicy: ClusterFirstWithHostNet`, the README's
// advice when the Ceph public network is reachable from the hosts only (here the monitors
// advertise 127.0.0.1). Everything else is deploy/ unchanged.
//
// One setting has no counterpart in a real cluster: the API server's address. The kubelet gives
// every container KUBERNETES_SERVICE_HOST/PORT, the `kubernetes` Service's cluster IP, which
// kube-proxy routes to the API servers. Here no kube-proxy runs, and none could route there:
// the test API server listens on loopback, and an Endpoints address may not be loopback. So the
// patch names the API server in the env of the containers (the sidecar talks to libvirt only);
// a container's own env wins over what the kubelet injects.
import { mkdirSync, writeFileSync } from "node:fs";
import { join, relative } from "node:path";
import { REPO_ROOT } from "../kube/control-plane.ts";
import type { PodTemplate } from "../image/daemonset-podman.ts";

export interface OverlayOptions {
  /** The DaemonSet's pod template as deploy/ has it (daemonset-podman.ts's podTemplateOf). */
  readonly template: PodTemplate;
  readonly daemonSetName: string;
  /** The image as `make image` reported it, e.g. localhost/vmsnap-controller:0.1.0. */
  readonly image: string;
  /** The API server's URL. */
  readonly server: string;
}

/** Writes `<dir>/kustomization.yaml` (JSON, which is YAML) and returns `dir`. */
export function writeDeployOverlay(dir: string, o: OverlayOptions): string {
  mkdirSync(dir, { recursive: true });
  const api = new URL(o.server);
  const { name: newName, tag: newTag } = splitImage(o.image);
  const names = new Set(
    [...(o.template.spec.initContainers ?? []), ...o.template.spec.containers].map(
      (c) => splitImage(c.image).name,
    ),
  );
  const apiEnv = [
    { name: "KUBERNETES_SERVICE_HOST", value: api.hostname },
    { name: "KUBERNETES_SERVICE_PORT", value: api.port },
  ];
  const patch = {
    apiVersion: "apps/v1",
    kind: "DaemonSet",
    metadata: { name: o.daemonSetName },
    spec: {
      template: {
        spec: {
          hostNetwork: true,
          dnsPolicy: "ClusterFirstWithHostNet",
          containers: o.template.spec.containers.map((c) => ({ name: c.name, env: apiEnv })),
        },
      },
    },
  };
  const kustomization = {
    apiVersion: "kustomize.config.k8s.io/v1beta1",
    kind: "Kustomization",
    // kustomize takes a base by relative path only.
    resources: [relative(dir, join(REPO_ROOT, "deploy"))],
    images: [...names].map((name) => ({ name, newName, newTag })),
    patches: [
      {
        target: { kind: "DaemonSet", name: o.daemonSetName },
        patch: JSON.stringify(patch),
      },
    ],
  };
  writeFileSync(join(dir, "kustomization.yaml"), JSON.stringify(kustomization, null, 2));
  return dir;
}

function splitImage(ref: string): { name: string; tag: string } {
  const colon = ref.lastIndexOf(":");
  if (colon <= ref.lastIndexOf("/")) throw new Error(`image ${ref} has no tag`);
  return { name: ref.slice(0, colon), tag: ref.slice(colon + 1) };
}
