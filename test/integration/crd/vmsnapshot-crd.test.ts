// The VMSnapshot CRD as the real kube-apiserver enforces it: samples apply, invalid input is
// refused with a message naming the field to fix, the node field selector works, and status
// writes are conditional on resourceVersion.
import { readdirSync } from "node:fs";
import { join } from "node:path";
import { expect } from "chai";
import {
  ApiException,
  CustomObjectsApi,
  PatchStrategy,
  setHeaderOptions,
} from "@kubernetes/client-node";
import { stringify } from "yaml";
import { getControlPlane, REPO_ROOT, type ControlPlane } from "../../support/kube/control-plane.ts";

const GROUP = "vmsnap.io";
const VERSION = "v1alpha1";
const PLURAL = "vmsnapshots";

interface Manifest {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string };
  spec?: Record<string, unknown>;
  status?: Record<string, unknown>;
}

function snapshot(name: string, spec: Record<string, unknown>): Manifest {
  return { apiVersion: `${GROUP}/${VERSION}`, kind: "VMSnapshot", metadata: { name }, spec };
}

const validSource = { domain: "web-01", node: "hv-01" };

/** Each case: a spec the API server must refuse, and the field its message must name. */
const invalidSpecs: ReadonlyArray<{ name: string; spec: Record<string, unknown>; field: string }> =
  [
    { name: "missing source", spec: {}, field: "spec.source" },
    { name: "missing domain", spec: { source: { node: "hv-01" } }, field: "spec.source.domain" },
    { name: "missing node", spec: { source: { domain: "web-01" } }, field: "spec.source.node" },
    {
      name: "empty domain",
      spec: { source: { domain: "", node: "hv-01" } },
      field: "spec.source.domain",
    },
    {
      name: "domain with a semicolon",
      spec: { source: { domain: "vm;rm -rf /", node: "hv-01" } },
      field: "spec.source.domain",
    },
    {
      name: "domain with command substitution",
      spec: { source: { domain: "$(reboot)", node: "hv-01" } },
      field: "spec.source.domain",
    },
    {
      name: "domain with a path separator",
      spec: { source: { domain: "../etc/passwd", node: "hv-01" } },
      field: "spec.source.domain",
    },
    {
      name: "domain with an rbd snapshot separator",
      spec: { source: { domain: "vm@snap", node: "hv-01" } },
      field: "spec.source.domain",
    },
    {
      name: "domain longer than 64",
      spec: { source: { domain: "a".repeat(65), node: "hv-01" } },
      field: "spec.source.domain",
    },
    {
      name: "node not a DNS name",
      spec: { source: { domain: "web-01", node: "HV_01" } },
      field: "spec.source.node",
    },
    {
      name: "node with a space",
      spec: { source: { domain: "web-01", node: "hv 01" } },
      field: "spec.source.node",
    },
    {
      name: "quiesce not in the enum",
      spec: { source: validSource, quiesce: "Sometimes" },
      field: "spec.quiesce",
    },
    {
      name: "deletionPolicy not in the enum",
      spec: { source: validSource, deletionPolicy: "Orphan" },
      field: "spec.deletionPolicy",
    },
    {
      name: "memory not a boolean",
      spec: { source: validSource, memory: "yes" },
      field: "spec.memory",
    },
    {
      name: "memoryMode not in the enum",
      spec: { source: validSource, memory: true, memoryMode: "Background" },
      field: "spec.memoryMode",
    },
    {
      name: "memoryMode Live without memory",
      spec: { source: validSource, memoryMode: "Live" },
      field: "spec.memoryMode",
    },
    {
      name: "freezeTimeout malformed",
      spec: { source: validSource, freezeTimeout: "ten seconds" },
      field: "spec.freezeTimeout",
    },
    {
      name: "freezeTimeout negative",
      spec: { source: validSource, freezeTimeout: "-1s" },
      field: "spec.freezeTimeout",
    },
    {
      name: "freezeTimeout zero",
      spec: { source: validSource, freezeTimeout: "0s" },
      field: "spec.freezeTimeout",
    },
    {
      name: "freezeTimeout above 5m",
      spec: { source: validSource, freezeTimeout: "6m" },
      field: "spec.freezeTimeout",
    },
    {
      name: "freezeTimeout in hours",
      spec: { source: validSource, freezeTimeout: "1h" },
      field: "spec.freezeTimeout",
    },
    {
      name: "failureDeadline malformed",
      spec: { source: validSource, failureDeadline: "5 minutes" },
      field: "spec.failureDeadline",
    },
    {
      name: "failureDeadline above 1h",
      spec: { source: validSource, failureDeadline: "2h" },
      field: "spec.failureDeadline",
    },
    {
      name: "failureDeadline shorter than freezeTimeout",
      spec: { source: validSource, freezeTimeout: "30s", failureDeadline: "20s" },
      field: "spec.failureDeadline",
    },
    {
      name: "freezeTimeout above the default failureDeadline",
      spec: { source: validSource, freezeTimeout: "5m", failureDeadline: "1m" },
      field: "spec.failureDeadline",
    },
    {
      name: "excluded disk with shell characters",
      spec: { source: validSource, disks: { exclude: ["vdb;ls"] } },
      field: "spec.disks.exclude[0]",
    },
    {
      name: "excluded disk with a path",
      spec: { source: validSource, disks: { exclude: ["/dev/vdb"] } },
      field: "spec.disks.exclude[0]",
    },
    {
      name: "excluded disk listed twice",
      spec: { source: validSource, disks: { exclude: ["vdb", "vdb"] } },
      field: "spec.disks.exclude[1]",
    },
    {
      name: "unknown field",
      spec: { source: validSource, snapshotEverything: true },
      field: "spec.snapshotEverything",
    },
    {
      name: "unknown field in source",
      spec: { source: { ...validSource, uri: "qemu:///system" } },
      field: "spec.source.uri",
    },
  ];

describe("VMSnapshot CRD on a real kube-apiserver", function () {
  this.timeout(120_000);
  let cp: ControlPlane;
  let namespace: string;

  before(async () => {
    cp = await getControlPlane();
    namespace = await cp.newNamespace("crd");
  });

  const apply = (manifest: Manifest, ns = namespace) =>
    // JSON, not YAML: kubectl reads YAML 1.1, where an unquoted `yes` would be a boolean.
    cp.kubectl(["apply", "-n", ns, "-f", "-"], JSON.stringify(manifest));

  describe("samples", () => {
    it("every sample under config/samples applies and `kubectl get vmsnap` shows the printer columns", async () => {
      const dir = join(REPO_ROOT, "config/samples");
      const samples = readdirSync(dir).filter((f) => f.endsWith(".yaml"));
      expect(samples.length).to.be.at.least(2);
      for (const sample of samples) {
        const result = await cp.kubectl(["apply", "-n", namespace, "-f", join(dir, sample)]);
        expect(result.code, `${sample}: ${result.stderr}`).to.equal(0);
      }
      const table = await cp.kubectl(["get", "vmsnap", "-n", namespace]);
      expect(table.code, table.stderr).to.equal(0);
      const header = table.stdout.split("\n")[0]!.trim().split(/\s+/);
      expect(header).to.deep.equal([
        "NAME",
        "DOMAIN",
        "NODE",
        "PHASE",
        "READY",
        "REASON",
        "FROZEN(MS)",
        "AGE",
      ]);
      const wide = await cp.kubectl(["get", "vmsnap", "-n", namespace, "-o", "wide"]);
      expect(wide.stdout.split("\n")[0]!.trim().split(/\s+/)).to.include.members([
        "MEMORY",
        "QUIESCED",
        "DOWNTIME(MS)",
        "WAITING",
      ]);
      expect(table.stdout).to.match(/db-01-before-upgrade\s+db-01\s+hv-02/);
      expect(table.stdout).to.match(/web-01-nightly\s+web-01\s+hv-01/);
    });

    it("fills the documented defaults", async () => {
      await apply(snapshot("defaults", { source: validSource }));
      const got = await cp.kubectl(["get", "vmsnap", "defaults", "-n", namespace, "-o", "json"]);
      const spec = JSON.parse(got.stdout).spec;
      expect(spec).to.deep.include({
        memory: false,
        memoryMode: "Paused",
        quiesce: "IfAvailable",
        freezeTimeout: "10s",
        failureDeadline: "5m",
        deletionPolicy: "Delete",
      });
    });

    for (const [name, spec] of [
      [
        "the documented maximum freezeTimeout with the default failureDeadline",
        { freezeTimeout: "5m" },
      ],
      [
        "the documented minimum failureDeadline with the default freezeTimeout",
        { failureDeadline: "10s" },
      ],
    ] as const) {
      it(`accepts ${name}`, async () => {
        const objectName = `bounds-${"freezeTimeout" in spec ? "freeze" : "deadline"}`;
        const result = await apply(snapshot(objectName, { source: validSource, ...spec }));
        expect(result.code, result.stderr).to.equal(0);
      });
    }

    it("is listed under its category", async () => {
      const result = await cp.kubectl(["get", "snapshots", "-n", namespace, "-o", "name"]);
      expect(result.code, result.stderr).to.equal(0);
      expect(result.stdout).to.include("vmsnapshot.vmsnap.io/web-01-nightly");
    });
  });

  describe("invalid input is refused with a message naming the field", () => {
    it(`has at least 20 cases (${invalidSpecs.length})`, () => {
      expect(invalidSpecs.length).to.be.at.least(20);
    });

    invalidSpecs.forEach(({ name, spec, field }, index) => {
      it(`${index + 1} - ${name}`, async () => {
        const result = await apply(snapshot(`invalid-${index + 1}`, spec));
        expect(result.code, `accepted: ${result.stdout}`).to.not.equal(0);
        expect(result.stderr).to.include(field);
        const stored = await cp.kubectl(["get", "vmsnap", `invalid-${index + 1}`, "-n", namespace]);
        expect(stored.code, "nothing is stored").to.not.equal(0);
      });
    });

    it(`${invalidSpecs.length + 1} - spec changed after creation`, async () => {
      expect((await apply(snapshot("immutable", { source: validSource }))).code).to.equal(0);
      const changed = await apply(
        snapshot("immutable", { source: { ...validSource, domain: "web-02" } }),
      );
      expect(changed.code).to.not.equal(0);
      expect(changed.stderr).to.include("spec").and.include("immutable");
      const stored = JSON.parse(
        (await cp.kubectl(["get", "vmsnap", "immutable", "-n", namespace, "-o", "json"])).stdout,
      );
      expect(stored.spec.source.domain, "the original spec is kept").to.equal("web-01");
    });

    it(`${invalidSpecs.length + 2} - status set by a user without access to the status subresource`, async () => {
      const user = "alice";
      const role = {
        apiVersion: "rbac.authorization.k8s.io/v1",
        kind: "Role",
        metadata: { name: "snapshot-editor", namespace },
        rules: [
          {
            apiGroups: [GROUP],
            resources: [PLURAL],
            verbs: ["get", "list", "create", "patch", "update"],
          },
        ],
      };
      const binding = {
        apiVersion: "rbac.authorization.k8s.io/v1",
        kind: "RoleBinding",
        metadata: { name: "snapshot-editor", namespace },
        roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "Role", name: "snapshot-editor" },
        subjects: [{ apiGroup: "rbac.authorization.k8s.io", kind: "User", name: user }],
      };
      expect((await cp.kubectl(["apply", "-f", "-"], stringify(role))).code).to.equal(0);
      expect((await cp.kubectl(["apply", "-f", "-"], stringify(binding))).code).to.equal(0);
      expect((await apply(snapshot("status-guard", { source: validSource }))).code).to.equal(0);

      const forged = await cp.kubectl([
        "patch",
        "vmsnap",
        "status-guard",
        "-n",
        namespace,
        "--as",
        user,
        "--subresource=status",
        "--type=merge",
        "-p",
        JSON.stringify({ status: { phase: "Succeeded", readyToUse: true } }),
      ]);
      expect(forged.code).to.not.equal(0);
      expect(forged.stderr).to.include("vmsnapshots/status");
    });
  });

  it("ignores status written through the main resource (only the status subresource writes it)", async () => {
    const manifest = snapshot("status-ignored", { source: validSource });
    manifest.status = { phase: "Succeeded", readyToUse: true };
    expect((await apply(manifest)).code).to.equal(0);
    const stored = JSON.parse(
      (await cp.kubectl(["get", "vmsnap", "status-ignored", "-n", namespace, "-o", "json"])).stdout,
    );
    expect(stored.status?.phase).to.equal(undefined);
  });

  it("a field-selector list on spec.source.node returns exactly that node's snapshots", async () => {
    const ns = await cp.newNamespace("selector");
    for (const [name, node] of [
      ["a", "hv-a"],
      ["b", "hv-b"],
      ["c", "hv-a"],
    ] as const) {
      expect(
        (await apply(snapshot(name, { source: { domain: `vm-${name}`, node } }), ns)).code,
      ).to.equal(0);
    }
    const api = cp.kubeConfig().makeApiClient(CustomObjectsApi);
    const list = (await api.listNamespacedCustomObject({
      group: GROUP,
      version: VERSION,
      namespace: ns,
      plural: PLURAL,
      fieldSelector: "spec.source.node=hv-a",
    })) as { items: Manifest[] };
    expect(list.items.map((i) => i.metadata.name).sort()).to.deep.equal(["a", "c"]);
    const viaKubectl = await cp.kubectl([
      "get",
      "vmsnap",
      "-n",
      ns,
      "--field-selector",
      "spec.source.node=hv-b",
      "-o",
      "name",
    ]);
    expect(viaKubectl.stdout.trim()).to.equal("vmsnapshot.vmsnap.io/b");
  });

  it("a status merge patch carrying a stale resourceVersion is refused with 409", async () => {
    expect((await apply(snapshot("conditional", { source: validSource }))).code).to.equal(0);
    const api = cp.kubeConfig().makeApiClient(CustomObjectsApi);
    const key = { group: GROUP, version: VERSION, namespace, plural: PLURAL, name: "conditional" };
    const current = (await api.getNamespacedCustomObject(key)) as {
      metadata: { resourceVersion: string };
    };
    const stale = current.metadata.resourceVersion;
    const mergePatch = setHeaderOptions("Content-Type", PatchStrategy.MergePatch);
    await api.patchNamespacedCustomObjectStatus(
      { ...key, body: { metadata: { resourceVersion: stale }, status: { phase: "Pending" } } },
      mergePatch,
    );
    let refused: unknown;
    try {
      await api.patchNamespacedCustomObjectStatus(
        { ...key, body: { metadata: { resourceVersion: stale }, status: { phase: "Frozen" } } },
        mergePatch,
      );
    } catch (err) {
      refused = err;
    }
    expect(refused).to.be.instanceOf(ApiException);
    expect((refused as ApiException<unknown>).code).to.equal(409);
    const after = (await api.getNamespacedCustomObject(key)) as { status: { phase: string } };
    expect(after.status.phase, "the stale write changed nothing").to.equal("Pending");
  });
});
