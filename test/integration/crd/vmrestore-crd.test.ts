// The VMRestore CRD as the real kube-apiserver enforces it: a valid restore applies with its
// defaults and printer columns, invalid input is refused with a message naming the field to fix,
// and the spec cannot change after creation.
import { expect } from "chai";
import { getControlPlane, type ControlPlane } from "../../support/kube/control-plane.ts";

interface Manifest {
  apiVersion: string;
  kind: string;
  metadata: { name: string };
  spec: Record<string, unknown>;
}

function restore(name: string, spec: Record<string, unknown>): Manifest {
  return { apiVersion: "vmsnap.io/v1alpha1", kind: "VMRestore", metadata: { name }, spec };
}

const inPlace = { snapshotName: "web-01-nightly", target: { inPlace: {} } };

/** Each case: a spec the API server must refuse, and the field its message must name. */
const invalidSpecs: ReadonlyArray<{ name: string; spec: Record<string, unknown>; field: string }> =
  [
    { name: "missing snapshotName", spec: { target: { inPlace: {} } }, field: "spec.snapshotName" },
    { name: "missing target", spec: { snapshotName: "s" }, field: "spec.target" },
    {
      name: "snapshotName not a Kubernetes name",
      spec: { ...inPlace, snapshotName: "Web_01" },
      field: "spec.snapshotName",
    },
    {
      name: "both inPlace and newDomain",
      spec: { ...inPlace, target: { inPlace: {}, newDomain: { name: "web-copy" } } },
      field: "spec.target",
    },
    {
      name: "neither inPlace nor newDomain",
      spec: { ...inPlace, target: {} },
      field: "spec.target",
    },
    {
      name: "inPlace with a field",
      spec: { ...inPlace, target: { inPlace: { domain: "other" } } },
      field: "spec.target.inPlace",
    },
    {
      name: "newDomain without a name",
      spec: { ...inPlace, memory: "Skip", target: { newDomain: {} } },
      field: "spec.target.newDomain.name",
    },
    {
      name: "newDomain name with shell characters",
      spec: { ...inPlace, memory: "Skip", target: { newDomain: { name: "web;reboot" } } },
      field: "spec.target.newDomain.name",
    },
    {
      name: "newDomain name with a path",
      spec: { ...inPlace, memory: "Skip", target: { newDomain: { name: "../web" } } },
      field: "spec.target.newDomain.name",
    },
    {
      name: "newDomain node not a DNS name",
      spec: {
        ...inPlace,
        memory: "Skip",
        target: { newDomain: { name: "web-copy", node: "HV_01" } },
      },
      field: "spec.target.newDomain.node",
    },
    { name: "memory not in the enum", spec: { ...inPlace, memory: "Yes" }, field: "spec.memory" },
    {
      name: "powerState not in the enum",
      spec: { ...inPlace, powerState: "Suspended" },
      field: "spec.powerState",
    },
    {
      name: "powerState Stopped with memory Restore",
      spec: { ...inPlace, powerState: "Stopped" },
      field: "spec.powerState",
    },
    {
      name: "stopRunningTarget not a boolean",
      spec: { ...inPlace, stopRunningTarget: "yes" },
      field: "spec.stopRunningTarget",
    },
    {
      name: "stopRunningTarget for a new domain",
      spec: {
        snapshotName: "s",
        target: { newDomain: { name: "web-copy" } },
        memory: "Skip",
        stopRunningTarget: true,
      },
      field: "spec.stopRunningTarget",
    },
    {
      name: "memory Restore for a new domain",
      spec: { snapshotName: "s", target: { newDomain: { name: "web-copy" } } },
      field: "spec.memory",
    },
    {
      name: "thawTimeout malformed",
      spec: { ...inPlace, thawTimeout: "ten seconds" },
      field: "spec.thawTimeout",
    },
    {
      name: "thawTimeout above 5m",
      spec: { ...inPlace, thawTimeout: "6m" },
      field: "spec.thawTimeout",
    },
    {
      name: "thawTimeout below 1s",
      spec: { ...inPlace, thawTimeout: "500ms" },
      field: "spec.thawTimeout",
    },
    {
      name: "failureDeadline above 24h",
      spec: { ...inPlace, failureDeadline: "25h" },
      field: "spec.failureDeadline",
    },
    {
      name: "unknown field",
      spec: { ...inPlace, restoreEverything: true },
      field: "spec.restoreEverything",
    },
    {
      name: "unknown field in newDomain",
      spec: { ...inPlace, memory: "Skip", target: { newDomain: { name: "web-copy", uuid: "x" } } },
      field: "spec.target.newDomain.uuid",
    },
  ];

describe("VMRestore CRD on a real kube-apiserver", function () {
  this.timeout(120_000);
  let cp: ControlPlane;
  let namespace: string;

  before(async () => {
    cp = await getControlPlane();
    namespace = await cp.newNamespace("restore-crd");
  });

  // JSON, not YAML: kubectl reads YAML 1.1, where an unquoted `yes` would be a boolean.
  const apply = (manifest: Manifest) =>
    cp.kubectl(["apply", "-n", namespace, "-f", "-"], JSON.stringify(manifest));

  it("applies an in-place restore with the documented defaults", async () => {
    const applied = await apply(restore("defaults", inPlace));
    expect(applied.code, applied.stderr).to.equal(0);
    const got = await cp.kubectl(["get", "vmrestore", "defaults", "-n", namespace, "-o", "json"]);
    expect(JSON.parse(got.stdout).spec).to.deep.equal({
      ...inPlace,
      memory: "Restore",
      powerState: "Running",
      stopRunningTarget: false,
      thawTimeout: "10s",
      failureDeadline: "30m",
    });
  });

  it("applies a new-domain restore, and `kubectl get vmrestore` shows the printer columns", async () => {
    const spec = {
      snapshotName: "web-01-nightly",
      target: { newDomain: { name: "web-01-copy" } },
      memory: "Skip",
      powerState: "Stopped",
    };
    const applied = await apply(restore("copy", spec));
    expect(applied.code, applied.stderr).to.equal(0);
    const table = await cp.kubectl(["get", "vmrestore", "-n", namespace]);
    expect(table.code, table.stderr).to.equal(0);
    const header = table.stdout.split("\n")[0]!.trim().split(/\s+/);
    expect(header).to.deep.equal(["NAME", "SNAPSHOT", "TARGET", "PHASE", "READY", "AGE", "REASON"]);
    expect(table.stdout).to.match(/copy\s+web-01-nightly/);
  });

  describe("invalid input is refused with a message naming the field", () => {
    invalidSpecs.forEach(({ name, spec, field }, index) => {
      it(`${index + 1} - ${name}`, async () => {
        const result = await apply(restore(`invalid-${index + 1}`, spec));
        expect(result.code, `accepted: ${result.stdout}`).to.not.equal(0);
        expect(result.stderr).to.include(field);
        const stored = await cp.kubectl([
          "get",
          "vmrestore",
          `invalid-${index + 1}`,
          "-n",
          namespace,
        ]);
        expect(stored.code, "nothing is stored").to.not.equal(0);
      });
    });

    it(`${invalidSpecs.length + 1} - spec changed after creation`, async () => {
      expect((await apply(restore("immutable", inPlace))).code).to.equal(0);
      const changed = await apply(restore("immutable", { ...inPlace, snapshotName: "other" }));
      expect(changed.code).to.not.equal(0);
      expect(changed.stderr).to.include("spec").and.include("immutable");
    });
  });
});
