// The Argo CD health check, run under a real Lua interpreter against a VMSnapshot in every phase.
import { expect } from "chai";
import { argoHealthCheck } from "./argocd-lua.ts";
import type { JsonValue } from "./lua-table.ts";

const health = argoHealthCheck("health-vmsnapshot.lua");

function snapshot(status?: { [key: string]: JsonValue }): JsonValue {
  return {
    apiVersion: "vmsnap.io/v1alpha1",
    kind: "VMSnapshot",
    metadata: { name: "web-1", namespace: "vms", generation: 1 },
    spec: { source: { domain: "web-1", node: "host-a" }, memory: false },
    ...(status ? { status } : {}),
  };
}

function condition(type: string, status: string, reason: string, message = ""): JsonValue {
  return { type, status, reason, message, lastTransitionTime: "2025-01-01T00:00:00Z" };
}

describe("Argo CD health check for VMSnapshot", () => {
  it("is Progressing before the agent has written any status", async () => {
    expect((await health(snapshot())).status).to.equal("Progressing");
    expect((await health(snapshot({}))).status).to.equal("Progressing");
  });

  for (const phase of ["Pending", "Frozen", "DisksSnapshotted", "MemorySaved", "Thawed"]) {
    it(`is Progressing in phase ${phase}, naming the phase`, async () => {
      const result = await health(
        snapshot({
          phase,
          observedGeneration: 1,
          conditions: [
            condition("Ready", "False", "Reconciling"),
            condition("Reconciling", "True", phase),
          ],
        }),
      );
      expect(result.status).to.equal("Progressing");
      expect(result.message).to.contain(phase);
    });
  }

  it("is Healthy when Succeeded, reporting the frozen window", async () => {
    const result = await health(
      snapshot({
        phase: "Succeeded",
        observedGeneration: 1,
        readyToUse: true,
        freezeDurationMs: 137,
        conditions: [condition("Ready", "True", "Succeeded")],
      }),
    );
    expect(result).to.deep.equal({
      status: "Healthy",
      message: "Snapshot ready; guest frozen 137 ms",
    });
  });

  it("is Degraded when Failed, with the typed reason and message", async () => {
    const result = await health(
      snapshot({
        phase: "Failed",
        error: { reason: "FreezeTimeout", message: 'guest agent did not answer "fsfreeze" in 10s' },
        conditions: [condition("Ready", "False", "FreezeTimeout")],
      }),
    );
    expect(result).to.deep.equal({
      status: "Degraded",
      message: 'FreezeTimeout: guest agent did not answer "fsfreeze" in 10s',
    });
  });

  it("is Degraded when Failed even without an error detail", async () => {
    expect((await health(snapshot({ phase: "Failed" }))).status).to.equal("Degraded");
  });

  it("is Degraded when Stalled is True, whatever the phase", async () => {
    const result = await health(
      snapshot({
        phase: "Pending",
        conditions: [condition("Stalled", "True", "UnsupportedDisk", "vdb is an NVMe disk")],
      }),
    );
    expect(result).to.deep.equal({
      status: "Degraded",
      message: "UnsupportedDisk: vdb is an NVMe disk",
    });
  });

  it("stays Progressing when Stalled is False", async () => {
    const result = await health(
      snapshot({ phase: "Frozen", conditions: [condition("Stalled", "False", "Progressing")] }),
    );
    expect(result.status).to.equal("Progressing");
  });

  it("is Progressing while the status describes an older generation", async () => {
    const obj = snapshot({ phase: "Succeeded", observedGeneration: 1 }) as {
      [k: string]: JsonValue;
    };
    obj.metadata = { name: "web-1", namespace: "vms", generation: 2 };
    expect((await health(obj)).status).to.equal("Progressing");
  });

  it("says Unknown for a phase it does not know rather than guess", async () => {
    const result = await health(snapshot({ phase: "Restoring" }));
    expect(result).to.deep.equal({ status: "Unknown", message: "Unrecognised phase Restoring" });
  });
});
