// The status merge patch: fields the plan dropped are sent as null, an unchanged status writes
// nothing, and a second pass of the plan at the same instant changes nothing.
import { expect } from "chai";
import type { VMSnapshotSchedule } from "../../../src/api/schedule-types.ts";
import { planSchedule } from "../../../src/schedule/plan.ts";
import { statusMergePatch } from "../../../src/schedule/status-patch.ts";

describe("schedule status merge patch", () => {
  it("removes with null a field the new status no longer has", () => {
    expect(
      statusMergePatch(
        { nextScheduleTime: "2026-05-01T11:00:00.000Z", missedRuns: 1 },
        { missedRuns: 1, lastConsideredTime: "2026-05-01T10:00:00.000Z" },
      ),
    ).to.deep.equal({
      nextScheduleTime: null,
      missedRuns: 1,
      lastConsideredTime: "2026-05-01T10:00:00.000Z",
    });
  });

  it("is undefined when nothing changes, whatever the key order", () => {
    expect(
      statusMergePatch(
        { snapshots: { inProgress: 0, succeeded: 2, failed: 0 }, missedRuns: 0 },
        { missedRuns: 0, snapshots: { failed: 0, succeeded: 2, inProgress: 0 } },
      ),
    ).to.equal(undefined);
  });

  it("a plan repeated at the same instant on its own status writes nothing", () => {
    const schedule: VMSnapshotSchedule = {
      apiVersion: "vmsnap.io/v1alpha1",
      kind: "VMSnapshotSchedule",
      metadata: {
        name: "db-01",
        namespace: "a",
        uid: "u-1",
        generation: 1,
        creationTimestamp: new Date("2026-05-01T09:10:00Z"),
      },
      spec: {
        schedule: "0 * * * *",
        template: { source: { domain: "db-01", node: "hv-02" } },
        suspend: true,
      },
    };
    const now = new Date("2026-05-01T09:30:00Z");
    const first = planSchedule(schedule, [], now);
    expect(statusMergePatch(schedule.status, first.status)).to.not.equal(undefined);
    const second = planSchedule(
      { ...schedule, status: first.status },
      [],
      new Date("2026-05-01T09:31:00Z"),
    );
    expect(statusMergePatch(first.status, second.status)).to.equal(undefined);
    const resumed = planSchedule(
      { ...schedule, spec: { ...schedule.spec, suspend: false }, status: second.status },
      [],
      now,
    );
    expect(statusMergePatch(second.status, resumed.status)).to.deep.include({
      nextScheduleTime: "2026-05-01T10:00:00.000Z",
    });
  });
});
