// deploy/tenancy/'s admission policies on a real kube-apiserver (v1.37): the namespace's
// allowed-domains list refuses a VMSnapshot of any other domain, and a VMSnapshotSchedule created
// with or changed to one, with a message naming the field; and the agent's service account, with
// real pod-bound tokens, may write only its own node's VMSnapshots, status, finalizers and Events.
import {
  ApiException,
  CustomObjectsApi,
  KubeConfig,
  PatchStrategy,
  setHeaderOptions,
} from "@kubernetes/client-node";
import { expect } from "chai";
import { join } from "node:path";

import { getControlPlane, REPO_ROOT, type ControlPlane } from "../../support/kube/control-plane.ts";
import { waitFor } from "../../support/processes.ts";

const TENANCY = join(REPO_ROOT, "deploy", "tenancy");
const AGENT_NS = "vmsnap-system";
const AGENT_SA = "vmsnap-controller";
const POLICIES = [
  "validatingadmissionpolicy/vmsnap-allowed-domains",
  "validatingadmissionpolicybinding/vmsnap-allowed-domains",
  "validatingadmissionpolicy/vmsnap-agent-own-node",
  "validatingadmissionpolicybinding/vmsnap-agent-own-node",
];

const snapshot = (namespace: string, name: string, domain: string, node: string) =>
  JSON.stringify({
    apiVersion: "vmsnap.io/v1alpha1",
    kind: "VMSnapshot",
    metadata: { name, namespace, finalizers: ["vmsnap.io/cleanup"] },
    spec: { source: { domain, node } },
  });

/** The field the policy names for a schedule. */
const field = "spec.template.source.domain";

const schedule = (namespace: string, name: string, domain: string, node: string) =>
  JSON.stringify({
    apiVersion: "vmsnap.io/v1alpha1",
    kind: "VMSnapshotSchedule",
    metadata: { name, namespace, finalizers: ["vmsnap.io/schedule-runs"] },
    spec: { schedule: "0 0 1 1 *", template: { source: { domain, node } } },
  });

/** Expects `r` to be vmsnap-allowed-domains refusing `domain` on `node`, naming `field`. */
function expectRefused(
  r: { code: number; stderr: string },
  o: { field: string; domain: string; node: string; namespace: string },
): void {
  expect(r.code, "refused").to.not.equal(0);
  expect(r.stderr).to.include("ValidatingAdmissionPolicy 'vmsnap-allowed-domains'");
  expect(r.stderr).to.include(
    `${o.field}: domain "${o.domain}" on node "${o.node}" is not allowed in namespace ${o.namespace}`,
  );
}

async function ok(p: Promise<{ code: number; stdout: string; stderr: string }>): Promise<string> {
  const r = await p;
  expect(r.code, r.stderr).to.equal(0);
  return r.stdout;
}

describe("tenancy admission policies on a real apiserver", function () {
  this.timeout(180_000);
  let cp: ControlPlane;

  before(async () => {
    cp = await getControlPlane();
    await ok(cp.kubectl(["apply", "-f", join(TENANCY, "domain-allow-list.yaml")]));
    await ok(cp.kubectl(["apply", "-f", join(TENANCY, "agent-own-node.yaml")]));
  });

  after(async () => {
    // Cluster-wide objects: gone again, so later test files sharing this apiserver (which may
    // act as the agent's account without pod-bound tokens) are not judged by them.
    if (cp) await cp.kubectl(["delete", "--ignore-not-found", ...POLICIES]);
  });

  describe("vmsnap-allowed-domains", () => {
    let restricted: string;
    let open: string;

    before(async () => {
      restricted = await cp.newNamespace("allow");
      open = await cp.newNamespace("open");
      await ok(
        cp.kubectl([
          "annotate",
          "namespace",
          restricted,
          "vmsnap.io/allowed-domains=db-01, hv-2/web-01",
        ]),
      );
      // The policy takes effect once the apiserver's admission plugin has seen it.
      await waitFor(
        "vmsnap-allowed-domains in force",
        async () =>
          (
            await cp.kubectl(
              ["create", "--dry-run=server", "-f", "-"],
              snapshot(restricted, "probe", "db-07", "hv-1"),
            )
          ).code !== 0,
        30_000,
        250,
      );
    });

    it("admits a listed domain on any node, and a NODE/DOMAIN entry on its node", async () => {
      await ok(cp.kubectl(["create", "-f", "-"], snapshot(restricted, "a", "db-01", "hv-1")));
      await ok(cp.kubectl(["create", "-f", "-"], snapshot(restricted, "b", "db-01", "hv-9")));
      await ok(cp.kubectl(["create", "-f", "-"], snapshot(restricted, "c", "web-01", "hv-2")));
    });

    it("refuses an unlisted domain, and a node-bound entry on another node, naming spec.source.domain", async () => {
      for (const [name, domain, node] of [
        ["d", "db-07", "hv-1"],
        ["e", "web-01", "hv-3"],
      ] as const) {
        const r = await cp.kubectl(["create", "-f", "-"], snapshot(restricted, name, domain, node));
        expectRefused(r, { field: "spec.source.domain", domain, node, namespace: restricted });
        const gone = await cp.kubectl(["get", "vmsnapshot", name, "-n", restricted]);
        expect(gone.code, "nothing was created").to.not.equal(0);
      }
    });

    it("leaves namespaces without the annotation alone", async () => {
      await ok(cp.kubectl(["create", "-f", "-"], snapshot(open, "any", "db-07", "hv-3")));
      await ok(cp.kubectl(["create", "-f", "-"], schedule(open, "any", "db-07", "hv-3")));
    });

    it("refuses a VMSnapshotSchedule of an unlisted domain at creation, naming spec.template.source.domain, and admits listed ones", async () => {
      await ok(cp.kubectl(["create", "-f", "-"], schedule(restricted, "sa", "db-01", "hv-1")));
      await ok(cp.kubectl(["create", "-f", "-"], schedule(restricted, "sb", "web-01", "hv-2")));
      for (const [name, domain, node] of [
        ["sd", "db-07", "hv-1"],
        ["se", "web-01", "hv-3"],
      ] as const) {
        const r = await cp.kubectl(["create", "-f", "-"], schedule(restricted, name, domain, node));
        expectRefused(r, { field, domain, node, namespace: restricted });
        const gone = await cp.kubectl(["get", "vmsnapshotschedule", name, "-n", restricted]);
        expect(gone.code, "nothing was created").to.not.equal(0);
      }
    });

    it("refuses changing a schedule's spec.template.source to an unlisted domain, and lets other spec changes pass", async () => {
      const patch = (spec: object) =>
        cp.kubectl([
          "patch",
          "vmsnapshotschedule",
          "sa",
          "-n",
          restricted,
          "--type=merge",
          "-p",
          JSON.stringify({ spec }),
        ]);
      for (const source of [
        { domain: "db-07", node: "hv-1" },
        { domain: "web-01", node: "hv-1" },
      ]) {
        expectRefused(await patch({ template: { source } }), {
          field,
          ...source,
          namespace: restricted,
        });
      }
      await ok(patch({ template: { source: { domain: "web-01", node: "hv-2" } } }));
      await ok(patch({ suspend: true, retention: { keepLast: 3 } }));
      const now = JSON.parse(
        await ok(cp.kubectl(["get", "vmsnapshotschedule", "sa", "-n", restricted, "-o", "json"])),
      ) as { spec: { suspend: boolean; template: { source: object } } };
      expect(now.spec.template.source).to.deep.equal({ domain: "web-01", node: "hv-2" });
      expect(now.spec.suspend).to.equal(true);
    });

    it("checks creation (and a schedule's change of domain) only: status, finalizer and other writes on older objects still pass", async () => {
      await ok(
        cp.kubectl([
          "annotate",
          "namespace",
          restricted,
          "--overwrite",
          "vmsnap.io/allowed-domains=db-02",
        ]),
      );
      await waitFor(
        "the new list in force",
        async () =>
          (
            await cp.kubectl(
              ["create", "--dry-run=server", "-f", "-"],
              snapshot(restricted, "probe", "db-01", "hv-1"),
            )
          ).code !== 0,
        30_000,
        250,
      );
      await ok(
        cp.kubectl([
          "patch",
          "vmsnapshot",
          "a",
          "-n",
          restricted,
          "--subresource=status",
          "--type=merge",
          "-p",
          '{"status":{"phase":"Pending"}}',
        ]),
      );
      await ok(
        cp.kubectl([
          "patch",
          "vmsnapshot",
          "a",
          "-n",
          restricted,
          "--type=merge",
          "-p",
          '{"metadata":{"finalizers":null}}',
        ]),
      );
      // A schedule of a domain no longer listed: changes that keep its source, its status and
      // the agent's finalizer removal still pass, so it can be suspended and deleted.
      for (const args of [
        ["--type=merge", "-p", '{"spec":{"suspend":false}}'],
        ["--subresource=status", "--type=merge", "-p", '{"status":{"missedRuns":1}}'],
        ["--type=merge", "-p", '{"metadata":{"finalizers":null}}'],
      ])
        await ok(cp.kubectl(["patch", "vmsnapshotschedule", "sb", "-n", restricted, ...args]));
      await ok(cp.kubectl(["delete", "vmsnapshotschedule", "sb", "-n", restricted]));
    });
  });

  describe("vmsnap-agent-own-node, with real pod-bound service-account tokens", () => {
    let tenant: string;
    const tokens: Record<string, string> = {};

    /** kubectl as the agent, with `token`. */
    const asAgent = (token: string, args: string[], input?: string) =>
      cp.kubectl([`--token=${token}`, ...args], input);

    before(async () => {
      tenant = await cp.newNamespace("nodes");
      await ok(cp.kubectl(["apply", "-f", join(REPO_ROOT, "deploy", "namespace.yaml")]));
      await ok(cp.kubectl(["apply", "-k", join(REPO_ROOT, "deploy", "rbac")]));
      // One agent pod per node, bound by spec.nodeName as the scheduler would. No Node objects:
      // the token carries the pod's node name without one.
      for (const node of ["node-a", "node-b"]) {
        const pod = `agent-${node}-${tenant}`;
        await ok(
          cp.kubectl(
            ["apply", "-f", "-"],
            JSON.stringify({
              apiVersion: "v1",
              kind: "Pod",
              metadata: { name: pod, namespace: AGENT_NS },
              spec: {
                nodeName: node,
                serviceAccountName: AGENT_SA,
                automountServiceAccountToken: false,
                containers: [{ name: "agent", image: "vmsnap-controller:test" }],
              },
            }),
          ),
        );
        tokens[node] = (
          await ok(
            cp.kubectl([
              "create",
              "token",
              AGENT_SA,
              "-n",
              AGENT_NS,
              "--bound-object-kind=Pod",
              `--bound-object-name=${pod}`,
            ]),
          )
        ).trim();
      }
      tokens.unbound = (await ok(cp.kubectl(["create", "token", AGENT_SA, "-n", AGENT_NS]))).trim();
      for (const [name, node] of [
        ["on-a", "node-a"],
        ["on-b", "node-b"],
      ] as const)
        await ok(cp.kubectl(["create", "-f", "-"], snapshot(tenant, name, "vm-1", node)));
      await waitFor(
        "vmsnap-agent-own-node in force",
        async () =>
          (
            await asAgent(tokens["node-a"]!, [
              "patch",
              "vmsnapshot",
              "on-b",
              "-n",
              tenant,
              "--dry-run=server",
              "--type=merge",
              "-p",
              '{"metadata":{"labels":{"probe":"x"}}}',
            ])
          ).code !== 0,
        30_000,
        250,
      );
    });

    it("the token bound to a pod on node-a carries node-a, and no node UID without a Node object", async () => {
      const whoami = JSON.parse(
        await ok(asAgent(tokens["node-a"]!, ["auth", "whoami", "-o", "json"])),
      ) as {
        status: { userInfo: { username: string; extra?: Record<string, string[]> } };
      };
      expect(whoami.status.userInfo.username).to.equal(
        `system:serviceaccount:${AGENT_NS}:${AGENT_SA}`,
      );
      expect(
        whoami.status.userInfo.extra?.["authentication.kubernetes.io/node-name"],
      ).to.deep.equal(["node-a"]);
      expect(whoami.status.userInfo.extra).to.not.have.property(
        "authentication.kubernetes.io/node-uid",
      );
    });

    /** A status merge patch as the agent's client sends it (kubectl would GET status first,
     *  which the agent's role does not grant). */
    const setPhase = async (token: string, name: string) => {
      const base = cp.kubeConfig();
      const kc = new KubeConfig();
      kc.loadFromOptions({
        clusters: base.clusters,
        users: [{ name: "agent", token }],
        contexts: [{ name: "agent", cluster: base.clusters[0]!.name, user: "agent" }],
        currentContext: "agent",
      });
      try {
        await kc.makeApiClient(CustomObjectsApi).patchNamespacedCustomObjectStatus(
          {
            group: "vmsnap.io",
            version: "v1alpha1",
            namespace: tenant,
            plural: "vmsnapshots",
            name,
            body: { status: { phase: "Frozen" } },
          },
          setHeaderOptions("Content-Type", PatchStrategy.MergePatch),
        );
        return { code: 0, stdout: "", stderr: "" };
      } catch (err) {
        if (!(err instanceof ApiException)) throw err;
        return { code: err.code, stdout: "", stderr: String(err.body) };
      }
    };
    const stripFinalizer = (token: string, name: string) =>
      asAgent(token, [
        "patch",
        "vmsnapshot",
        name,
        "-n",
        tenant,
        "--type=json",
        "-p",
        '[{"op":"remove","path":"/metadata/finalizers"}]',
      ]);

    it("admits the agent writing its own node's status", async () => {
      await ok(setPhase(tokens["node-a"]!, "on-a"));
      const phase = await ok(
        cp.kubectl(["get", "vmsnapshot", "on-a", "-n", tenant, "-o", "jsonpath={.status.phase}"]),
      );
      expect(phase).to.equal("Frozen");
    });

    it("refuses the agent writing another node's status, naming spec.source.node", async () => {
      const r = await setPhase(tokens["node-a"]!, "on-b");
      expect(r.code).to.not.equal(0);
      expect(r.stderr).to.include("ValidatingAdmissionPolicy 'vmsnap-agent-own-node'");
      expect(r.stderr).to.include(
        "spec.source.node: the vmsnap agent on node node-a may not write objects of node node-b",
      );
      const phase = await ok(
        cp.kubectl(["get", "vmsnapshot", "on-b", "-n", tenant, "-o", "jsonpath={.status.phase}"]),
      );
      expect(phase).to.equal("");
    });

    it("refuses the agent stripping another node's finalizer, and admits its own node's", async () => {
      const r = await stripFinalizer(tokens["node-a"]!, "on-b");
      expect(r.code).to.not.equal(0);
      expect(r.stderr).to.include("may not write objects of node node-b");
      const finalizers = await ok(
        cp.kubectl([
          "get",
          "vmsnapshot",
          "on-b",
          "-n",
          tenant,
          "-o",
          "jsonpath={.metadata.finalizers}",
        ]),
      );
      expect(finalizers).to.include("vmsnap.io/cleanup");
      await ok(stripFinalizer(tokens["node-b"]!, "on-b"));
    });

    it("refuses every write with a token that carries no node", async () => {
      const r = await setPhase(tokens.unbound!, "on-a");
      expect(r.code).to.not.equal(0);
      expect(r.stderr).to.include("the vmsnap agent's token carries no node");
    });

    it("admits the agent's Events only with its own node as reportingInstance", async () => {
      const event = (instance: string) =>
        JSON.stringify({
          apiVersion: "events.k8s.io/v1",
          kind: "Event",
          metadata: { generateName: "vmsnap-", namespace: tenant },
          eventTime: new Date().toISOString().replace("Z", "000Z"),
          reportingController: "vmsnap.io/agent",
          reportingInstance: instance,
          action: "Reconcile",
          reason: "Frozen",
          type: "Normal",
          note: "test",
          regarding: {
            apiVersion: "vmsnap.io/v1alpha1",
            kind: "VMSnapshot",
            name: "on-a",
            namespace: tenant,
          },
        });
      await ok(asAgent(tokens["node-a"]!, ["create", "-f", "-"], event("node-a")));
      const r = await asAgent(tokens["node-a"]!, ["create", "-f", "-"], event("node-b"));
      expect(r.code).to.not.equal(0);
      expect(r.stderr).to.include(
        "reportingInstance: the vmsnap agent on node node-a may write only Events",
      );
    });

    it("admits the agent creating and deleting a schedule's runs on its own node only", async () => {
      const run = (name: string, node: string) => snapshot(tenant, name, "vm-1", node);
      await ok(
        asAgent(
          tokens["node-a"]!,
          ["create", "--dry-run=server", "-f", "-"],
          run("run-a", "node-a"),
        ),
      );
      const created = await asAgent(
        tokens["node-a"]!,
        ["create", "--dry-run=server", "-f", "-"],
        run("run-b", "node-b"),
      );
      expect(created.code).to.not.equal(0);
      expect(created.stderr).to.include(
        "spec.source.node: the vmsnap agent on node node-a may not write objects of node node-b",
      );
      const deleted = await asAgent(tokens["node-a"]!, [
        "delete",
        "vmsnapshot",
        "on-b",
        "-n",
        tenant,
        "--dry-run=server",
      ]);
      expect(deleted.code).to.not.equal(0);
      expect(deleted.stderr).to.include("may not change objects of node node-b");
      await ok(
        asAgent(tokens["node-b"]!, [
          "delete",
          "vmsnapshot",
          "on-b",
          "-n",
          tenant,
          "--dry-run=server",
        ]),
      );
    });

    it("holds schedules to their node too, naming spec.template.source.node", async () => {
      await ok(
        cp.kubectl(
          ["create", "-f", "-"],
          JSON.stringify({
            apiVersion: "vmsnap.io/v1alpha1",
            kind: "VMSnapshotSchedule",
            metadata: {
              name: "sched-b",
              namespace: tenant,
              finalizers: ["vmsnap.io/schedule-runs"],
            },
            spec: {
              schedule: "0 * * * *",
              template: { source: { domain: "vm-1", node: "node-b" } },
            },
          }),
        ),
      );
      const strip = (token: string) =>
        asAgent(token, [
          "patch",
          "vmsnapshotschedule",
          "sched-b",
          "-n",
          tenant,
          "--type=json",
          "-p",
          '[{"op":"remove","path":"/metadata/finalizers"}]',
        ]);
      const r = await strip(tokens["node-a"]!);
      expect(r.code).to.not.equal(0);
      expect(r.stderr).to.include(
        "spec.template.source.node: the vmsnap agent on node node-a may not write objects of node node-b",
      );
      await ok(strip(tokens["node-b"]!));
    });

    it("does not judge anyone but the agent: the admin writes any node's status", async () => {
      await ok(
        cp.kubectl([
          "patch",
          "vmsnapshot",
          "on-b",
          "-n",
          tenant,
          "--subresource=status",
          "--type=merge",
          "-p",
          '{"status":{"phase":"Failed"}}',
        ]),
      );
    });
  });
});
