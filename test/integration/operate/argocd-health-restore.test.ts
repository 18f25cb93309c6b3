// The Argo CD health check for VMRestore, run under a real Lua interpreter in every phase.
import { expect } from "chai";
import { join } from "node:path";
import { RESTORE_PHASES } from "../../../src/api/restore-types.ts";
import { toLua, type JsonValue } from "./lua-table.ts";
import { REPO_ROOT, run } from "./run.ts";

const SCRIPT = join(REPO_ROOT, "deploy/argocd/health-vmrestore.lua");

async function health(obj: JsonValue): Promise<{ status: string; message: string }> {
  const harness = [
    `obj = ${toLua(obj)}`,
    `local hs = dofile(${toLua(SCRIPT)})`,
    `io.write(tostring(hs.status), "\\n", tostring(hs.message))`,
  ].join("\n");
  const result = await run("lua5.4", ["-"], { input: harness });
  expect(result.code, result.stderr).to.equal(0);
  const [status = "", ...message] = result.stdout.split("\n");
  return { status, message: message.join("\n") };
}

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
