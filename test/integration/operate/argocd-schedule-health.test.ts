// The Argo CD health check for VMSnapshotSchedule, run under a real Lua interpreter against the
// statuses the agent writes (src/schedule/plan.ts).
import { expect } from "chai";
import { argoHealthCheck } from "./argocd-lua.ts";
import type { JsonValue } from "./lua-table.ts";

const health = argoHealthCheck("health-vmsnapshotschedule.lua");

const condition = (type: string, status: string, reason: string, message: string): JsonValue => ({
  type,
  status,
  reason,
  message,
  lastTransitionTime: "2026-05-01T00:00:00Z",
});

function schedule(
  status?: { [key: string]: JsonValue },
  spec: { [key: string]: JsonValue } = {},
): JsonValue {
  return {
    apiVersion: "vmsnap.io/v1alpha1",
    kind: "VMSnapshotSchedule",
    metadata: { name: "db-01-hourly", namespace: "vms", generation: 2 },
    spec: {
      schedule: "0 * * * *",
      template: { source: { domain: "db-01", node: "hv-02" } },
      ...spec,
    },
    ...(status ? { status } : {}),
  };
}

const scheduled = (extra: JsonValue[] = []): { [key: string]: JsonValue } => ({
  observedGeneration: 2,
  conditions: [
    condition("Ready", "True", "Scheduled", "next run at 2026-05-01T11:00:00.000Z"),
    condition("Stalled", "False", "NotStalled", "no error"),
    ...extra,
  ],
});

describe("Argo CD health check for VMSnapshotSchedule", () => {
  it("is Progressing until the agent has written status for this generation", async () => {
    expect((await health(schedule())).status).to.equal("Progressing");
    expect((await health(schedule({ ...scheduled(), observedGeneration: 1 }))).status).to.equal(
      "Progressing",
    );
  });

  it("is Healthy when scheduled, naming the next run", async () => {
    const result = await health(schedule(scheduled()));
    expect(result).to.deep.equal({
      status: "Healthy",
      message: "Scheduled: next run at 2026-05-01T11:00:00.000Z",
    });
  });

  it("is Degraded when the agent refuses the spec, with the field to fix", async () => {
    const message =
      'spec.schedule: "61 * * * *" is not a valid schedule: the minute field has 61, outside 0-59';
    const result = await health(
      schedule({
        observedGeneration: 2,
        conditions: [
          condition("Ready", "False", "InvalidSpec", message),
          condition("Stalled", "True", "InvalidSpec", message),
        ],
      }),
    );
    expect(result).to.deep.equal({ status: "Degraded", message: `InvalidSpec: ${message}` });
  });

  it("is Degraded when the newest finished run failed", async () => {
    const failed = "the newest finished run, db-01-hourly-202605011000, failed";
    const result = await health(
      schedule({
        observedGeneration: 2,
        conditions: [
          condition("Ready", "False", "LastRunFailed", failed),
          condition("Stalled", "False", "NotStalled", "no error"),
        ],
      }),
    );
    expect(result.status).to.equal("Degraded");
    expect(result.message).to.equal(`LastRunFailed: ${failed}`);
  });

  it("is Suspended while spec.suspend is true", async () => {
    const result = await health(schedule(scheduled(), { suspend: true }));
    expect(result.status).to.equal("Suspended");
  });
});
