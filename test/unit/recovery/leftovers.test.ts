import { expect } from "chai";
import type { VMRestore, VMRestoreStatus } from "../../../src/api/restore-types.ts";
import { restoreLeftovers } from "../../../src/recovery/leftovers.ts";

const T = Date.parse("2026-12-03T10:00:00Z");
const iso = (ms: number) => new Date(ms).toISOString();

function restore(name: string, status: Partial<VMRestoreStatus>): VMRestore {
  return {
    apiVersion: "vmsnap.io/v1alpha1",
    kind: "VMRestore",
    metadata: { name, namespace: "team-a", uid: `uid-${name}` },
    spec: { snapshotName: "snap", target: { inPlace: {} } },
    status: {
      node: "node-1",
      targetDomain: "db",
      targetUUID: "6f1c4a0e-0000-4000-8000-000000000001",
      restoredDisks: [],
      restoresMemory: true,
      startTime: iso(T),
      ...status,
    } as VMRestoreStatus,
  } as VMRestore;
}

describe("leftovers a restarted agent settles first", () => {
  const resumed = {
    phase: "Resumed",
    memoryRestored: true,
    thawDeadline: iso(T + 10_000),
    resumedAt: iso(T + 1_000),
  } as const;

  it("thaws a restored guest resumed and not yet thawed on this node, by its pinned UUID", () => {
    expect(restoreLeftovers([restore("r1", resumed)], "node-1", T + 2_000)).to.deep.equal([
      {
        key: "team-a/r1",
        domain: "db",
        uuid: "6f1c4a0e-0000-4000-8000-000000000001",
        thaw: true,
        resume: false,
      },
    ]);
  });

  it("leaves other nodes' restores, thawed ones, and a guest still paused (its restore arms the guard first)", () => {
    const found = restoreLeftovers(
      [
        restore("other-node", { ...resumed, node: "node-2" }),
        restore("thawed", { ...resumed, phase: "Thawed", thawedAt: iso(T + 1_300) }),
        restore("paused", {
          phase: "MemoryRestored",
          memoryRestored: true,
          thawDeadline: iso(T + 10_000),
        }),
        restore("disks-only", { phase: "DisksRestored", restoresMemory: false }),
      ],
      "node-1",
      T + 2_000,
    );
    expect(found).to.deep.equal([]);
  });
});
