// The tenancy parts of deploy/ as rendered: admission policies cluster-scoped and naming the
// agent's real account, user roles labelled for aggregation, and the API token given to the
// controller container alone — the thaw guard gets none.
import { expect } from "chai";
import { join } from "node:path";
import { parseAllDocuments } from "yaml";

import {
  controlPlaneBinDir,
  getControlPlane,
  REPO_ROOT,
  run,
} from "../../support/kube/control-plane.ts";

type Manifest = {
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string> };
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  [k: string]: any;
};

const TOKEN_PATH = "/var/run/secrets/kubernetes.io/serviceaccount";

describe("deploy/ tenancy, rendered", function () {
  this.timeout(120_000);
  let base: Manifest[];
  before(async () => {
    const r = await run(join(controlPlaneBinDir(), "kubectl"), [
      "kustomize",
      join(REPO_ROOT, "deploy"),
    ]);
    expect(r.code, r.stderr).to.equal(0);
    base = parseAllDocuments(r.stdout).map((d) => d.toJS() as Manifest);
  });
  const find = (kind: string, name: string) => {
    const m = base.find((x) => x.kind === kind && x.metadata.name === name);
    expect(m, `${kind}/${name}`).to.not.equal(undefined);
    return m!;
  };

  it("applies the admission policies cluster-scoped, whatever namespace kustomize wrote on them", async () => {
    // kubectl's kustomize does not know these kinds are cluster-scoped and adds the base's
    // namespace; the apiserver must (and does) ignore it.
    const rendered = base.filter((m) => m.kind.startsWith("ValidatingAdmissionPolicy"));
    expect(rendered).to.have.length(4);
    const cp = await getControlPlane();
    const applied = await cp.kubectl(
      ["apply", "--dry-run=server", "-o", "json", "-f", "-"],
      JSON.stringify({ apiVersion: "v1", kind: "List", items: rendered }),
    );
    expect(applied.code, applied.stderr).to.equal(0);
    const items = (JSON.parse(applied.stdout) as { items: Manifest[] }).items;
    expect(items).to.have.length(4);
    for (const p of items) expect(p.metadata.namespace, p.metadata.name).to.equal(undefined);
  });

  it("has the agent-own-node policy name the agent's service account as deployed", () => {
    const sa = find("ServiceAccount", "vmsnap-controller");
    const policy = find("ValidatingAdmissionPolicy", "vmsnap-agent-own-node");
    const condition = (policy.spec.matchConditions as Array<{ expression: string }>)[0]!.expression;
    expect(condition).to.include(
      `'system:serviceaccount:${sa.metadata.namespace}:${sa.metadata.name}'`,
    );
  });

  it("labels vmsnap-edit for admin and edit, vmsnap-view for view", () => {
    expect(find("ClusterRole", "vmsnap-edit").metadata.labels).to.include({
      "rbac.authorization.k8s.io/aggregate-to-admin": "true",
      "rbac.authorization.k8s.io/aggregate-to-edit": "true",
    });
    expect(find("ClusterRole", "vmsnap-view").metadata.labels).to.include({
      "rbac.authorization.k8s.io/aggregate-to-view": "true",
    });
  });

  it("gives the API token to the controller container only: none for the thaw guard", () => {
    const pod = find("DaemonSet", "vmsnap-controller").spec.template.spec;
    expect(pod.automountServiceAccountToken).to.equal(false);
    const mounts = (c: Manifest) =>
      (c.volumeMounts ?? []) as Array<{ name: string; mountPath: string }>;
    const guard = (pod.initContainers as Manifest[]).find((c) => c.name === "thaw-guard")!;
    expect(mounts(guard).map((m) => m.mountPath)).to.not.include(TOKEN_PATH);
    const controller = (pod.containers as Manifest[]).find((c) => c.name === "controller")!;
    const tokenMount = mounts(controller).find((m) => m.mountPath === TOKEN_PATH);
    expect(tokenMount, "the controller's token mount").to.not.equal(undefined);
    const volume = (pod.volumes as Manifest[]).find((v) => v.name === tokenMount!.name)!;
    const sources = volume.projected.sources as Array<Record<string, unknown>>;
    expect(sources.some((s) => "serviceAccountToken" in s)).to.equal(true);
    expect(sources.some((s) => "configMap" in s)).to.equal(true);
  });
});
