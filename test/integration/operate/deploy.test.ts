// deploy/ against a real kube-apiserver: the whole base passes a server-side dry run with strict
// field validation, and the agent's service account may do exactly what the controller needs —
// its own resources, their status and finalizers, Events — and nothing else.
import { expect } from "chai";
import { join } from "node:path";
import { parseAllDocuments } from "yaml";
import { getControlPlane, type ControlPlane } from "../../support/kube/control-plane.ts";
import { REPO_ROOT } from "./run.ts";

const AGENT = "system:serviceaccount:vmsnap-system:vmsnap-controller";
// A pod's token carries these groups too; impersonating them makes the check what a real pod gets.
const AGENT_GROUPS = ["system:serviceaccounts", "system:serviceaccounts:vmsnap-system"];
const deployPath = (p: string) => join(REPO_ROOT, "deploy", p);

interface Check {
  verb: string;
  resource: string;
  subresource?: string;
  /** Namespace to ask about: "theirs" (a user namespace), "ours" (vmsnap-system) or "all". */
  where: "theirs" | "ours" | "all" | "cluster";
}

const ALLOWED: Check[] = [
  ...["get", "list", "watch", "update", "patch"].map((verb): Check => ({
    verb,
    resource: "vmsnapshots.vmsnap.io",
    where: "theirs",
  })),
  { verb: "list", resource: "vmsnapshots.vmsnap.io", where: "all" },
  { verb: "watch", resource: "vmsnapshots.vmsnap.io", where: "all" },
  { verb: "patch", resource: "vmsnapshots.vmsnap.io", subresource: "status", where: "theirs" },
  { verb: "update", resource: "vmsnapshots.vmsnap.io", subresource: "status", where: "theirs" },
  { verb: "update", resource: "vmsnapshots.vmsnap.io", subresource: "finalizers", where: "theirs" },
  // A schedule's runs: created at their time, deleted by retention and with their schedule.
  { verb: "create", resource: "vmsnapshots.vmsnap.io", where: "theirs" },
  { verb: "delete", resource: "vmsnapshots.vmsnap.io", where: "theirs" },
  ...["get", "list", "watch", "update", "patch"].map((verb): Check => ({
    verb,
    resource: "vmsnapshotschedules.vmsnap.io",
    where: "theirs",
  })),
  { verb: "list", resource: "vmsnapshotschedules.vmsnap.io", where: "all" },
  { verb: "watch", resource: "vmsnapshotschedules.vmsnap.io", where: "all" },
  {
    verb: "patch",
    resource: "vmsnapshotschedules.vmsnap.io",
    subresource: "status",
    where: "theirs",
  },
  {
    verb: "update",
    resource: "vmsnapshotschedules.vmsnap.io",
    subresource: "finalizers",
    where: "theirs",
  },
  { verb: "create", resource: "events.events.k8s.io", where: "theirs" },
  { verb: "patch", resource: "events.events.k8s.io", where: "theirs" },
];

const DENIED: Check[] = [
  // Its own resources, beyond what reconciling needs: schedules are the users'.
  { verb: "deletecollection", resource: "vmsnapshots.vmsnap.io", where: "theirs" },
  { verb: "create", resource: "vmsnapshotschedules.vmsnap.io", where: "theirs" },
  { verb: "delete", resource: "vmsnapshotschedules.vmsnap.io", where: "theirs" },
  { verb: "deletecollection", resource: "vmsnapshotschedules.vmsnap.io", where: "theirs" },
  // Restores are not the agent's yet.
  { verb: "create", resource: "vmrestores.vmsnap.io", where: "theirs" },
  // Secrets anywhere: the Ceph keyring is a kubelet-mounted volume, not an API read.
  { verb: "get", resource: "secrets", where: "theirs" },
  { verb: "list", resource: "secrets", where: "all" },
  { verb: "get", resource: "secrets", where: "ours" },
  // Pods and the rest of the core group.
  { verb: "get", resource: "pods", where: "theirs" },
  { verb: "list", resource: "pods", where: "all" },
  { verb: "create", resource: "pods/exec", where: "theirs" },
  { verb: "get", resource: "configmaps", where: "theirs" },
  { verb: "create", resource: "events", where: "theirs" },
  { verb: "get", resource: "nodes", where: "cluster" },
  // Other groups, and anything that would let it widen its own rights.
  { verb: "create", resource: "deployments.apps", where: "theirs" },
  { verb: "update", resource: "customresourcedefinitions.apiextensions.k8s.io", where: "cluster" },
  { verb: "create", resource: "clusterrolebindings.rbac.authorization.k8s.io", where: "cluster" },
  { verb: "escalate", resource: "clusterroles.rbac.authorization.k8s.io", where: "cluster" },
  { verb: "impersonate", resource: "users", where: "cluster" },
];

describe("deploy/ on a real apiserver", function () {
  this.timeout(180_000);
  let cp: ControlPlane;
  let theirs: string;
  let rbacWasThere = false;

  before(async () => {
    cp = await getControlPlane();
    theirs = await cp.newNamespace("vms");
    rbacWasThere = (await cp.kubectl(["get", "clusterrole", "vmsnap-controller"])).code === 0;
    // The RBAC matrix needs the role really bound; the namespace must exist for its account.
    for (const args of [
      ["apply", "-f", deployPath("namespace.yaml")],
      ["apply", "-k", deployPath("rbac")],
    ]) {
      const applied = await cp.kubectl(args);
      expect(applied.code, applied.stderr).to.equal(0);
    }
  });

  after(async () => {
    // Only what this file created. The namespace stays: without a namespace controller it could
    // never finish terminating, and a later test applying deploy/ would be refused.
    if (cp && !rbacWasThere)
      await cp.kubectl(["delete", "-k", deployPath("rbac"), "--ignore-not-found"]);
  });

  describe("kubectl apply --dry-run=server -k deploy/", () => {
    it("is accepted whole, every object validated strictly by the apiserver", async () => {
      const result = await cp.kubectl([
        "apply",
        "--dry-run=server",
        "--validate=strict",
        "-k",
        deployPath(""),
      ]);
      expect(result.code, result.stderr).to.equal(0);
      for (const object of [
        "namespace/vmsnap-system",
        "customresourcedefinition.apiextensions.k8s.io/vmsnapshots.vmsnap.io",
        "serviceaccount/vmsnap-controller",
        "clusterrole.rbac.authorization.k8s.io/vmsnap-controller",
        "clusterrolebinding.rbac.authorization.k8s.io/vmsnap-controller",
        "service/vmsnap-controller",
        "daemonset.apps/vmsnap-controller",
      ]) {
        expect(result.stdout).to.match(
          new RegExp(`^${object.replaceAll(".", "\\.")} .*\\(server dry run\\)$`, "m"),
        );
      }
    });

    it("would refuse the DaemonSet with a field the apiserver does not know (the check has teeth)", async () => {
      const rendered = await cp.kubectl(["kustomize", deployPath("controller")]);
      expect(rendered.code, rendered.stderr).to.equal(0);
      const daemonSet = parseAllDocuments(rendered.stdout)
        .map(
          (d) =>
            d.toJS() as {
              kind: string;
              spec: {
                template: { spec: { containers: { securityContext: Record<string, unknown> }[] } };
              };
            },
        )
        .find((m) => m.kind === "DaemonSet")!;
      // A mis-cased field: client-side YAML would accept it, only the apiserver's schema knows.
      daemonSet.spec.template.spec.containers[0]!.securityContext.readOnlyRootFileSystem = true;
      const broken = JSON.stringify(daemonSet);
      const result = await cp.kubectl(
        ["apply", "--dry-run=server", "--validate=strict", "-n", "vmsnap-system", "-f", "-"],
        broken,
      );
      expect(result.code).to.not.equal(0);
      expect(result.stderr).to.contain("readOnlyRootFileSystem");
    });
  });

  describe("what the agent's service account may do", () => {
    async function canI(check: Check, as?: string): Promise<string> {
      const args = ["auth", "can-i", check.verb, check.resource];
      if (check.subresource) args.push(`--subresource=${check.subresource}`);
      if (check.where === "theirs") args.push("-n", theirs);
      if (check.where === "ours") args.push("-n", "vmsnap-system");
      if (check.where === "all") args.push("--all-namespaces");
      if (as) args.push(`--as=${as}`, ...AGENT_GROUPS.map((g) => `--as-group=${g}`));
      const result = await cp.kubectl(args);
      const answer = result.stdout.trim().split("\n")[0] ?? "";
      // kubectl exits 0 for yes and 1 for no; anything else is a broken question, not a "no".
      expect(answer, `${args.join(" ")}: ${result.stderr}`).to.be.oneOf(["yes", "no"]);
      expect(result.code, result.stderr).to.equal(answer === "yes" ? 0 : 1);
      return answer;
    }

    const describeCheck = (c: Check) =>
      `${c.verb} ${c.resource}${c.subresource ? `/${c.subresource}` : ""} (${c.where === "theirs" ? "a user namespace" : c.where === "ours" ? "vmsnap-system" : c.where === "all" ? "all namespaces" : "cluster"})`;

    for (const check of ALLOWED) {
      it(`may ${describeCheck(check)}`, async () => {
        expect(await canI(check, AGENT)).to.equal("yes");
      });
    }

    for (const check of DENIED) {
      it(`may not ${describeCheck(check)}`, async () => {
        expect(await canI(check, AGENT)).to.equal("no");
      });
    }

    it("is denied those because of its role, not the question: the admin asking the same is allowed", async () => {
      for (const check of DENIED) expect(await canI(check), describeCheck(check)).to.equal("yes");
    });
  });
});
