// Status is the durable cursor: every machine state written to status must come back exactly,
// whatever path led to it, and the conditions must say what kstatus-aware tools expect.
import { expect } from "chai";
import type { VMSnapshot } from "../../../src/api/types.ts";
import { stateFromStatus, statusFromState, indicationsOf } from "../../../src/snapshot/status.ts";
import { start, step, type MachineState } from "../../../src/machine/step.ts";
import type { SnapshotEvent } from "../../../src/machine/events.ts";
import { ev, FAILURE_DEADLINE_MS, FREEZE_TIMEOUT_MS, T0 } from "../machine/fixtures.ts";

function resource(memory: boolean, quiesce: "Required" | "IfAvailable" | "Disabled"): VMSnapshot {
  return {
    apiVersion: "vmsnap.io/v1alpha1",
    kind: "VMSnapshot",
    metadata: { name: "s", namespace: "n", uid: "u-1", generation: 1 },
    spec: {
      source: { domain: "vm", node: "hv" },
      memory,
      quiesce,
      freezeTimeout: `${FREEZE_TIMEOUT_MS / 1000}s`,
      failureDeadline: `${FAILURE_DEADLINE_MS / 60_000}m`,
    },
  };
}

function run(snapshot: VMSnapshot, events: SnapshotEvent[]): MachineState[] {
  let state: MachineState = stateFromStatus(snapshot, T0);
  const states = [state];
  for (const e of events) {
    state = step(state, e);
    states.push(state);
  }
  return states;
}

const journeys: Array<{
  name: string;
  memory: boolean;
  quiesce: "Required" | "IfAvailable" | "Disabled";
  events: SnapshotEvent[];
  final: string;
}> = [
  {
    name: "frozen disk snapshot",
    memory: false,
    quiesce: "IfAvailable",
    events: [ev.armed, ev.frozen, ev.disksSnapshotted, ev.thawed, ev.completed],
    final: "Succeeded",
  },
  {
    name: "frozen VM snapshot",
    memory: true,
    quiesce: "Required",
    events: [ev.armed, ev.frozen, ev.disksSnapshotted, ev.memorySaved, ev.thawed, ev.completed],
    final: "Succeeded",
  },
  {
    name: "unquiesced without an agent",
    memory: false,
    quiesce: "IfAvailable",
    events: [ev.noAgent, ev.disksSnapshotted, ev.completed],
    final: "Succeeded",
  },
  {
    name: "unquiesced snapshot that pinned its domain and kept its definition",
    memory: false,
    quiesce: "IfAvailable",
    events: [ev.noAgentPinned, ev.disksSnapshotted, ev.completedKept],
    final: "Succeeded",
  },
  {
    name: "failed freeze under IfAvailable",
    memory: true,
    quiesce: "IfAvailable",
    events: [ev.armed, ev.freezeFailed, ev.disksSnapshotted, ev.memorySaved, ev.completed],
    final: "Succeeded",
  },
  {
    name: "storage failure while frozen",
    memory: true,
    quiesce: "Required",
    events: [ev.armed, ev.frozen, ev.storageFailed],
    final: "Failed",
  },
  {
    name: "freeze timeout",
    memory: false,
    quiesce: "Required",
    events: [ev.armed, ev.frozen, ev.tickPastFreeze],
    final: "Failed",
  },
];

describe("status as the durable cursor", () => {
  for (const j of journeys) {
    it(`round-trips every state of a ${j.name}`, () => {
      const snapshot = resource(j.memory, j.quiesce);
      const states = run(snapshot, j.events);
      expect(states.at(-1)!.phase).to.equal(j.final);
      for (const state of states) {
        const status = statusFromState(snapshot, state, T0 + 1_000, { snapshotName: "vmsnap-u-1" });
        const back = stateFromStatus({ ...snapshot, status }, T0 + 99_999);
        expect(back.phase).to.equal(state.phase);
        expect(back.context).to.deep.equal(state.context);
      }
    });
  }

  it("records the pinned UUID of an unfrozen snapshot and where its definition is kept", () => {
    const snapshot = resource(false, "IfAvailable");
    const done = run(snapshot, [ev.noAgentPinned, ev.disksSnapshotted, ev.completedKept]).at(-1)!;
    const status = statusFromState(snapshot, done, T0 + 1_000, { snapshotName: "vmsnap-u-1" });
    expect(status.domainUUID).to.equal(ev.noAgentPinned.domainUUID);
    expect(status.definition).to.deep.equal(ev.completedKept.definition);
    // A UUID recorded by the armed freeze is the one that stays.
    const armed = run(snapshot, [ev.armed, { ...ev.freezeFailed, domainUUID: "other" }]).at(-1)!;
    expect(armed.context.domainUUID).to.equal(ev.armed.domainUUID);
  });

  it("a fresh resource starts Pending at the time of its first reconcile", () => {
    const state = stateFromStatus(resource(false, "IfAvailable"), T0 + 5);
    expect(state.phase).to.equal("Pending");
    expect(state.context.startedAt).to.equal(T0 + 5);
  });
});

describe("status conditions and indications", () => {
  const snapshot = resource(false, "IfAvailable");
  const conditions = (state: MachineState) =>
    Object.fromEntries(
      statusFromState(snapshot, state, T0, { snapshotName: "x" }).conditions!.map((c) => [
        c.type,
        c,
      ]),
    );

  it("Succeeded is Ready=True, Reconciling=False, Stalled=False, with the frozen window in the message", () => {
    const states = run(snapshot, [
      ev.armed,
      ev.frozen,
      ev.disksSnapshotted,
      ev.thawed,
      ev.completed,
    ]);
    const c = conditions(states.at(-1)!);
    expect([
      c.Ready!.status,
      c.Reconciling!.status,
      c.Stalled!.status,
      c.Quiesced!.status,
    ]).to.deep.equal(["True", "False", "False", "True"]);
    expect(c.Ready!.message).to.include(`frozen ${ev.thawed.at - ev.frozen.at} ms`);
  });

  it("Failed is Stalled=True with the failure's reason; Ready=False", () => {
    const states = run(snapshot, [ev.armed, ev.frozen, ev.storageFailed]);
    const c = conditions(states.at(-1)!);
    expect(c.Stalled).to.include({ status: "True", reason: "StorageError" });
    expect(c.Ready).to.include({ status: "False", reason: "StorageError" });
  });

  it("an unquiesced snapshot says so: Quiesced=False with the reason, indications NoGuestAgent/Unquiesced", () => {
    const states = run(snapshot, [ev.noAgent, ev.disksSnapshotted, ev.completed]);
    const final = states.at(-1)!;
    expect(conditions(final).Quiesced).to.include({ status: "False", reason: "NoGuestAgent" });
    expect(conditions(final).Ready!.message).to.include("crash-consistent");
    expect(indicationsOf(final.context)).to.deep.equal(["Online", "NoGuestAgent", "Unquiesced"]);
  });

  it("in progress is Reconciling=True with the phase, or the reason it waits", () => {
    const pending = start({
      memory: false,
      memoryMode: "Paused",
      quiesce: "IfAvailable",
      freezeTimeoutMs: 1,
      failureDeadlineMs: 2,
      startedAt: T0,
    });
    const status = statusFromState(snapshot, pending, T0, {
      snapshotName: "x",
      waiting: { reason: "WaitingForDomainLock", message: "busy" },
    });
    expect(status.conditions!.find((c) => c.type === "Reconciling")).to.include({
      status: "True",
      reason: "WaitingForDomainLock",
    });
  });

  it("keeps lastTransitionTime of conditions whose status did not change", () => {
    const states = run(snapshot, [ev.armed, ev.frozen]);
    const first = statusFromState(snapshot, states[1]!, T0, { snapshotName: "x" });
    const second = statusFromState({ ...snapshot, status: first }, states[2]!, T0 + 500, {
      snapshotName: "x",
    });
    const byType = (s: typeof first, t: string) => s.conditions!.find((c) => c.type === t)!;
    expect(byType(second, "Ready").lastTransitionTime).to.equal(
      byType(first, "Ready").lastTransitionTime,
    );
    expect(byType(second, "Quiesced").lastTransitionTime).to.not.equal(
      byType(first, "Quiesced").lastTransitionTime,
    );
  });
});
