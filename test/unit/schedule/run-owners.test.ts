// Which schedule a change of a VMSnapshot wakes: its controller owner, also once it is deleted.
import { expect } from "chai";
import type { VMSnapshot } from "../../../src/api/types.ts";
import { RunOwners } from "../../../src/schedule/run-owners.ts";

function snapshot(name: string, owner?: { kind: string; name: string; controller: boolean }) {
  return {
    apiVersion: "vmsnap.io/v1alpha1",
    kind: "VMSnapshot",
    metadata: {
      name,
      namespace: "ns",
      ...(owner && {
        ownerReferences: [{ apiVersion: "vmsnap.io/v1alpha1", uid: "u", ...owner }],
      }),
    },
    spec: { source: { domain: "d", node: "n" } },
  } as VMSnapshot;
}

describe("run owners", () => {
  it("wakes the controlling schedule on a change, and still on the run's deletion", () => {
    const owners = new RunOwners();
    const run = snapshot("db-01-202605011000", {
      kind: "VMSnapshotSchedule",
      name: "db-01",
      controller: true,
    });
    expect(owners.changed("ns/db-01-202605011000", run)).to.equal("ns/db-01");
    expect(owners.changed("ns/db-01-202605011000", undefined)).to.equal("ns/db-01");
    expect(owners.changed("ns/db-01-202605011000", undefined), "forgotten once gone").to.equal(
      undefined,
    );
  });

  it("wakes it when the run changes bucket or starts its deletion, not for steps in between", () => {
    const owners = new RunOwners();
    const key = "ns/db-01-202605011000";
    const run = snapshot("db-01-202605011000", {
      kind: "VMSnapshotSchedule",
      name: "db-01",
      controller: true,
    });
    const at = (phase: string, deleting = false): VMSnapshot =>
      ({
        ...run,
        metadata: {
          ...run.metadata,
          ...(deleting ? { deletionTimestamp: new Date(0) } : {}),
        },
        status: { phase },
      }) as VMSnapshot;
    expect(owners.changed(key, run), "a new run").to.equal("ns/db-01");
    for (const phase of ["Pending", "Frozen", "DisksSnapshotted", "Thawed"])
      expect(owners.changed(key, at(phase)), phase).to.equal(undefined);
    expect(owners.changed(key, at("Succeeded")), "Succeeded").to.equal("ns/db-01");
    expect(owners.changed(key, at("Succeeded")), "the same again").to.equal(undefined);
    expect(owners.changed(key, at("Succeeded", true)), "deletion begun").to.equal("ns/db-01");
    expect(owners.changed(key, undefined), "gone").to.equal("ns/db-01");
  });

  it("wakes nothing for a snapshot no schedule controls", () => {
    const owners = new RunOwners();
    expect(owners.changed("ns/manual", snapshot("manual"))).to.equal(undefined);
    const referenced = snapshot("ref", {
      kind: "VMSnapshotSchedule",
      name: "x",
      controller: false,
    });
    expect(owners.changed("ns/ref", referenced)).to.equal(undefined);
    expect(owners.changed("ns/ref", undefined)).to.equal(undefined);
  });
});
