// deploy/tenancy/resource-quota.example.yaml on a real kube-apiserver: the ResourceQuota
// admission plugin counts VMSnapshots against `count/vmsnapshots.vmsnap.io` and refuses the one
// over the limit. The test control plane runs no controller-manager, whose quota controller
// would fill in the quota's usage; the test writes the starting usage (0) itself, after which
// admission counts every create.
import { expect } from "chai";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { parse } from "yaml";

import { getControlPlane, REPO_ROOT, type ControlPlane } from "../../support/kube/control-plane.ts";

const EXAMPLE = join(REPO_ROOT, "deploy", "tenancy", "resource-quota.example.yaml");
const RESOURCE = "count/vmsnapshots.vmsnap.io";

describe("the ResourceQuota example on count/vmsnapshots.vmsnap.io", function () {
  this.timeout(120_000);
  let cp: ControlPlane;
  let ns: string;

  before(async () => {
    cp = await getControlPlane();
    ns = await cp.newNamespace("quota");
  });

  it("refuses the VMSnapshot over the limit, naming the quota", async () => {
    const quota = parse(readFileSync(EXAMPLE, "utf8")) as {
      metadata: { name: string; namespace?: string };
      spec: { hard: Record<string, string> };
    };
    expect(quota.spec.hard[RESOURCE]).to.equal("20");
    // The example's limit, made small so the test reaches it.
    quota.spec.hard[RESOURCE] = "2";
    quota.metadata.namespace = ns;
    const applied = await cp.kubectl(["apply", "-f", "-"], JSON.stringify(quota));
    expect(applied.code, applied.stderr).to.equal(0);
    const usage = await cp.kubectl([
      "patch",
      "resourcequota",
      quota.metadata.name,
      "-n",
      ns,
      "--subresource=status",
      "--type=merge",
      "-p",
      JSON.stringify({ status: { hard: { [RESOURCE]: "2" }, used: { [RESOURCE]: "0" } } }),
    ]);
    expect(usage.code, usage.stderr).to.equal(0);

    const create = (name: string) =>
      cp.kubectl(
        ["create", "-f", "-"],
        JSON.stringify({
          apiVersion: "vmsnap.io/v1alpha1",
          kind: "VMSnapshot",
          metadata: { name, namespace: ns },
          spec: { source: { domain: "db-01", node: "hv-1" } },
        }),
      );
    for (const name of ["one", "two"]) {
      const r = await create(name);
      expect(r.code, r.stderr).to.equal(0);
    }
    const third = await create("three");
    expect(third.code).to.not.equal(0);
    expect(third.stderr).to.include(`exceeded quota: ${quota.metadata.name}`);
    expect(third.stderr).to.include(
      `requested: ${RESOURCE}=1, used: ${RESOURCE}=2, limited: ${RESOURCE}=2`,
    );
  });
});
