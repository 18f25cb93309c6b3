// The Argo CD health check for VMRestore, run under a real Lua interpreter in every phase.
import { expect } from "chai";
import { RESTORE_PHASES } from "../../../src/api/restore-types.ts";
import { argoHealthCheck } from "./argocd-lua.ts";
import type { JsonValue } from "./lua-table.ts";

const health = argoHealthCheck("health-vmrestore.lua");

const restore = (status?: { [key: string]: JsonValue }): JsonValue => ({
  apiVersion: "vmsnap.io/v1alpha1",
  kind: "VMRestore",
  metadata: { name: "db-back", namespace: "vms", generation: 1 },
  spec: { snapshotName: "db", target: { inPlace: {} } },
  ...(status ? { status } : {}),
});

describe("Argo CD health check for VMRestore", () => {
  it("is Progressing before the agent has written any status", async () => {
    expect((await health(restore())).status).to.equal("Progressing");
  });

  for (const phase of RESTORE_PHASES.filter((p) => p !== "Succeeded" && p !== "Failed")) {
    it(`is Progressing in phase ${phase}, naming it`, async () => {
      const result = await health(restore({ phase }));
      expect(result).to.deep.include({ status: "Progressing" });
      expect(result.message).to.contain(phase);
    });
  }

  it("is Healthy once Succeeded, with the thaw time", async () => {
    const result = await health(
      restore({ phase: "Succeeded", targetDomain: "db", resumeToThawMs: 430 }),
    );
    expect(result).to.deep.equal({
      status: "Healthy",
      message: "Restored db; thawed 430 ms after the resume",
    });
  });

  it("is Degraded when Failed, with the reason and message", async () => {
    const result = await health(
      restore({
        phase: "Failed",
        error: { reason: "TargetRunning", message: "domain db is running" },
      }),
    );
    expect(result).to.deep.equal({
      status: "Degraded",
      message: "TargetRunning: domain db is running",
    });
  });
});
