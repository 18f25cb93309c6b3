import { expect } from "chai";
import type { RestoreInput } from "../../../src/restore/context.ts";
import type { RestoreEvent } from "../../../src/restore/events.ts";
import {
  rehydrateRestore,
  startRestore,
  stepRestore,
  type RestoreState,
} from "../../../src/restore/step.ts";

const INPUT: RestoreInput = {
  snapshotName: "snap",
  newDomain: undefined,
  memoryWanted: true,
  powerState: "Running",
  stopRunningTarget: true,
  thawTimeoutMs: 10_000,
  failureDeadlineMs: 1_800_000,
  startedAt: 1_000,
};

const validated = (o: { stopFirst: boolean; restoresMemory: boolean }): RestoreEvent => ({
  type: "VALIDATED",
  at: 1_100,
  targetDomain: "vm",
  targetUUID: "u",
  node: "n",
  consistency: "ApplicationConsistent",
  ...o,
});
const disk = {
  target: "vda",
  backend: "rbd",
  source: "p/i",
  from: "p/i@s",
  method: "Rollback",
} as const;

/** Runs events from `state`, returning each state's phase and step and the last state. */
function run(state: RestoreState, events: RestoreEvent[]) {
  const steps = [state.step];
  const phases = [state.phase];
  for (const event of events) {
    const next = stepRestore(state, event);
    expect(next.accepted, `${event.type} in ${state.step}`).to.equal(true);
    state = next;
    steps.push(state.step);
    if (phases.at(-1) !== state.phase) phases.push(state.phase);
  }
  return { steps, phases, state };
}

describe("VMRestore machine", () => {
  it("in place with memory: every phase, in order, each entered by its own event", () => {
    const { steps, phases, state } = run(startRestore(INPUT), [
      validated({ stopFirst: true, restoresMemory: true }),
      { type: "TARGET_STOPPED", at: 1_200 },
      { type: "DISKS_RESTORED", at: 1_300, disks: [disk] },
      { type: "MEMORY_RESTORED", at: 1_400, thawDeadline: 11_400 },
      { type: "RESUMED", at: 1_500 },
      { type: "THAWED", at: 1_600, filesystems: 2, by: "Agent" },
      { type: "COMPLETED", at: 1_700 },
    ]);
    expect(steps).to.deep.equal([
      "Pending.Validating",
      "Pending.Stopping",
      "TargetStopped",
      "DisksRestored.RestoringMemory",
      "MemoryRestored",
      "Resumed",
      "Thawed",
      "Succeeded",
    ]);
    expect(phases).to.deep.equal([
      "Pending",
      "TargetStopped",
      "DisksRestored",
      "MemoryRestored",
      "Resumed",
      "Thawed",
      "Succeeded",
    ]);
    expect(state.context).to.include({
      memoryRestored: true,
      thawDeadline: 11_400,
      thawedAt: 1_600,
      thawedFilesystems: 2,
    });
  });

  it("disks only to a stopped or new target claims neither TargetStopped nor any memory phase", () => {
    const { phases } = run(startRestore({ ...INPUT, memoryWanted: false, newDomain: "copy" }), [
      validated({ stopFirst: false, restoresMemory: false }),
      { type: "DISKS_RESTORED", at: 1_300, disks: [disk] },
      { type: "COMPLETED", at: 1_400 },
    ]);
    expect(phases).to.deep.equal(["Pending", "DisksRestored", "Succeeded"]);
  });

  it("fails from any unfinished step with the event's reason, and a final state takes nothing", () => {
    const failed = stepRestore(startRestore(INPUT), {
      type: "FAILED",
      at: 1_050,
      reason: "SnapshotNotFound",
      message: "no VMSnapshot snap",
    });
    expect(failed.phase).to.equal("Failed");
    expect(failed.context.error).to.deep.equal({
      reason: "SnapshotNotFound",
      message: "no VMSnapshot snap",
    });
    expect(failed.compensations).to.deep.equal([]);
    const again = stepRestore(failed, { type: "COMPLETED", at: 2_000 });
    expect(again.accepted).to.equal(false);
    expect(again.phase).to.equal("Failed");
  });

  it("ignores an event its step does not take (no phase is claimed unearned)", () => {
    const next = stepRestore(startRestore(INPUT), { type: "RESUMED", at: 1_100 });
    expect(next.accepted).to.equal(false);
    expect(next.step).to.equal("Pending.Validating");
  });

  it("a resumed guest not thawed by its deadline fails ThawFailed and asks to settle the guest", () => {
    const { state } = run(startRestore(INPUT), [
      validated({ stopFirst: false, restoresMemory: true }),
      { type: "DISKS_RESTORED", at: 1_300, disks: [disk] },
      { type: "MEMORY_RESTORED", at: 1_400, thawDeadline: 11_400 },
      { type: "RESUMED", at: 1_500 },
    ]);
    expect(stepRestore(state, { type: "TICK", at: 11_000 }).accepted).to.equal(false);
    const late = stepRestore(state, { type: "TICK", at: 11_401 });
    expect(late.phase).to.equal("Failed");
    expect(late.context.error?.reason).to.equal("ThawFailed");
    expect(late.compensations).to.deep.equal(["settleGuest"]);
  });

  it("past failureDeadline any step fails DeadlineExceeded", () => {
    const late = stepRestore(startRestore(INPUT), { type: "TICK", at: 1_000 + 1_800_001 });
    expect(late.phase).to.equal("Failed");
    expect(late.context.error?.reason).to.equal("DeadlineExceeded");
  });

  it("read back from status, DisksRestored continues with the memory or the definition", () => {
    const base = { ...INPUT, restoredDisks: [disk], memoryRestored: false };
    expect(rehydrateRestore("DisksRestored", { ...base, restoresMemory: true }).step).to.equal(
      "DisksRestored.RestoringMemory",
    );
    expect(rehydrateRestore("DisksRestored", { ...base, restoresMemory: false }).step).to.equal(
      "DisksRestored.Defining",
    );
    expect(rehydrateRestore("Pending", base).step).to.equal("Pending.Validating");
    expect(rehydrateRestore("Resumed", { ...base, memoryRestored: true }).step).to.equal("Resumed");
  });
});
