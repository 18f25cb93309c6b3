// vmsnap-edit and vmsnap-view on a real kube-apiserver, through the built-in roles they aggregate
// into: a tenant bound to `edit` in namespace A may create VMSnapshots in A and nothing in B; one
// bound to `view` may read but not create. Asked with `kubectl auth can-i` and by real requests,
// as those users (impersonated by the test's admin).
import { expect } from "chai";
import { join } from "node:path";

import { getControlPlane, REPO_ROOT, type ControlPlane } from "../../support/kube/control-plane.ts";
import { aggregateClusterRoles } from "../../support/kube/role-aggregation.ts";

const ROLES = join(REPO_ROOT, "deploy", "tenancy", "user-roles.yaml");

describe("vmsnap-edit / vmsnap-view through admin, edit and view", function () {
  this.timeout(120_000);
  let cp: ControlPlane;
  let a: string;
  let b: string;
  // Unique per run: RoleBindings name them, and the apiserver is shared by the run's test files.
  const editor = `alice-${process.pid}`;
  const viewer = `bob-${process.pid}`;

  const as = (user: string, args: string[], input?: string) =>
    cp.kubectl([`--as=${user}`, ...args], input);
  const canI = async (user: string, ...args: string[]) => {
    const r = await as(user, ["auth", "can-i", ...args]);
    const answer = r.stdout.trim().split("\n")[0];
    expect(answer, `${args.join(" ")}: ${r.stderr}`).to.be.oneOf(["yes", "no"]);
    return answer;
  };
  // For kinds whose CRDs are not installed yet, kubectl auth can-i cannot resolve the group: ask
  // the authorizer directly with a SubjectAccessReview, as can-i does for known ones.
  const reviewed = async (user: string, verb: string, resource: string, namespace: string) => {
    const r = await cp.kubectl(
      ["create", "-o", "json", "-f", "-"],
      JSON.stringify({
        apiVersion: "authorization.k8s.io/v1",
        kind: "SubjectAccessReview",
        spec: { user, resourceAttributes: { group: "vmsnap.io", resource, verb, namespace } },
      }),
    );
    expect(r.code, r.stderr).to.equal(0);
    return (JSON.parse(r.stdout) as { status: { allowed: boolean } }).status.allowed ? "yes" : "no";
  };
  const manifest = (namespace: string, name: string) =>
    JSON.stringify({
      apiVersion: "vmsnap.io/v1alpha1",
      kind: "VMSnapshot",
      metadata: { name, namespace },
      spec: { source: { domain: "db-01", node: "hv-1" } },
    });

  before(async () => {
    cp = await getControlPlane();
    a = await cp.newNamespace("team-a");
    b = await cp.newNamespace("team-b");
    const applied = await cp.kubectl(["apply", "-f", ROLES]);
    expect(applied.code, applied.stderr).to.equal(0);
    // The test control plane runs no controller-manager: aggregate as its controller would.
    await aggregateClusterRoles(cp);
    for (const [name, role, user] of [
      ["editor", "edit", editor],
      ["viewer", "view", viewer],
    ] as const) {
      const bound = await cp.kubectl([
        "create",
        "rolebinding",
        name,
        "-n",
        a,
        `--clusterrole=${role}`,
        `--user=${user}`,
      ]);
      expect(bound.code, bound.stderr).to.equal(0);
    }
  });

  it("puts vmsnap.io into the built-in admin, edit and view roles by aggregation", async () => {
    for (const role of ["admin", "edit", "view"]) {
      const r = await cp.kubectl(["get", "clusterrole", role, "-o", "json"]);
      const rules = (
        JSON.parse(r.stdout) as { rules: Array<{ apiGroups?: string[]; verbs: string[] }> }
      ).rules;
      const ours = rules.filter((rule) => rule.apiGroups?.includes("vmsnap.io"));
      expect(ours.length, role).to.be.greaterThan(0);
      const verbs = new Set(ours.flatMap((rule) => rule.verbs));
      expect(verbs.has("create"), `${role} creates`).to.equal(role !== "view");
    }
  });

  describe("kubectl auth can-i", () => {
    it("edit in A: every vmsnap kind in A, read and write; not their status", async () => {
      for (const verb of ["create", "get", "list", "watch", "update", "patch", "delete"]) {
        expect(await canI(editor, verb, "vmsnapshots.vmsnap.io", "-n", a), verb).to.equal("yes");
        for (const resource of ["vmrestores", "vmsnapshotschedules"])
          expect(await reviewed(editor, verb, resource, a), `${verb} ${resource}`).to.equal("yes");
      }
      expect(await reviewed(editor, "create", "vmrestores", b), "not in B").to.equal("no");
      expect(
        await canI(editor, "patch", "vmsnapshots.vmsnap.io", "--subresource=status", "-n", a),
      ).to.equal("no");
    });

    it("edit in A: nothing in B", async () => {
      for (const verb of ["create", "get", "list", "delete"])
        expect(await canI(editor, verb, "vmsnapshots.vmsnap.io", "-n", b), verb).to.equal("no");
    });

    it("view in A: get, list and watch, no create, update or delete", async () => {
      for (const verb of ["get", "list", "watch"])
        expect(await canI(viewer, verb, "vmsnapshots.vmsnap.io", "-n", a), verb).to.equal("yes");
      for (const verb of ["create", "update", "patch", "delete"])
        expect(await canI(viewer, verb, "vmsnapshots.vmsnap.io", "-n", a), verb).to.equal("no");
      expect(await canI(viewer, "get", "vmsnapshots.vmsnap.io", "-n", b)).to.equal("no");
    });
  });

  describe("real requests", () => {
    it("the editor creates, lists and deletes a VMSnapshot in A", async () => {
      const created = await as(editor, ["create", "-f", "-"], manifest(a, "mine"));
      expect(created.code, created.stderr).to.equal(0);
      const listed = await as(editor, ["get", "vmsnapshots", "-n", a, "-o", "name"]);
      expect(listed.stdout).to.include("vmsnapshot.vmsnap.io/mine");
      const deleted = await as(editor, ["delete", "vmsnapshot", "mine", "-n", a]);
      expect(deleted.code, deleted.stderr).to.equal(0);
    });

    it("the editor is forbidden to create or list in B", async () => {
      const created = await as(editor, ["create", "-f", "-"], manifest(b, "theirs"));
      expect(created.code).to.not.equal(0);
      expect(created.stderr).to.match(
        /forbidden: User "alice-\d+" cannot create resource "vmsnapshots"/,
      );
      const listed = await as(editor, ["get", "vmsnapshots", "-n", b]);
      expect(listed.stderr).to.match(/forbidden/);
    });

    it("the viewer reads in A but is forbidden to create there", async () => {
      const seeded = await cp.kubectl(["create", "-f", "-"], manifest(a, "seen"));
      expect(seeded.code, seeded.stderr).to.equal(0);
      const got = await as(viewer, [
        "get",
        "vmsnapshot",
        "seen",
        "-n",
        a,
        "-o",
        "jsonpath={.spec.source.domain}",
      ]);
      expect(got.stdout).to.equal("db-01");
      const created = await as(viewer, ["create", "-f", "-"], manifest(a, "nope"));
      expect(created.stderr).to.match(
        /forbidden: User "bob-\d+" cannot create resource "vmsnapshots"/,
      );
    });

    it("the editor cannot write status, which is the agent's", async () => {
      const r = await as(editor, [
        "patch",
        "vmsnapshot",
        "seen",
        "-n",
        a,
        "--subresource=status",
        "--type=merge",
        "-p",
        '{"status":{"phase":"Succeeded"}}',
      ]);
      expect(r.stderr).to.match(/forbidden/);
    });
  });
});
