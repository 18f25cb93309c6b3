// The only way the controller drives the phase machine: restore the persisted phase and context,
// apply one event with xstate's pure transition(), and get back the next state, its context and
// the compensations to run. No actor is ever started, so nothing is re-run or re-armed on restart.
import { initialTransition, transition } from "xstate";
import { phaseAndStep, stateValueOf } from "./state-value.ts";
import type { Phase } from "../api/types.ts";
import type { SnapshotContext, SnapshotInput } from "./context.ts";
import type { SnapshotEvent } from "./events.ts";
import { compensationsFor, snapshotMachine, type Compensation } from "./machine.ts";

export interface MachineState {
  /** The phase users see in status. */
  readonly phase: Phase;
  /** The leaf state: which effect runs next (`Pending.Armed`, `Frozen`, ...). */
  readonly step: string;
  readonly context: SnapshotContext;
}

export interface Step extends MachineState {
  /** What must be undone before the new phase is recorded, in order. */
  readonly compensations: readonly Compensation[];
  /** False when the machine ignored the event (it does not apply in this step). */
  readonly accepted: boolean;
}

type Snapshot = ReturnType<typeof snapshotMachine.resolveState>;

function toState(snapshot: Snapshot): MachineState {
  const [phase, step] = phaseAndStep(snapshot.value);
  return { phase: phase as Phase, step, context: snapshot.context };
}

/** The machine state of a snapshot nobody has worked on yet. */
export function start(input: SnapshotInput): MachineState {
  const [snapshot] = initialTransition(snapshotMachine, input);
  return toState(snapshot);
}

/**
 * The machine state of a phase and context read back from status: the machine's own routing
 * settles which step of the phase is next.
 */
export function restore(phase: Phase, context: SnapshotContext): MachineState {
  const recorded = snapshotMachine.resolveState({ value: phase, context });
  const [settled] = transition(snapshotMachine, recorded, { type: "REHYDRATED", at: 0 });
  return toState(settled);
}

/** Applies one event to a state. Pure: same inputs, same result. */
export function step(state: MachineState, event: SnapshotEvent): Step {
  const current = snapshotMachine.resolveState({
    value: stateValueOf(state.step),
    context: state.context,
  });
  const [next, actions] = transition(snapshotMachine, current, event);
  const compensate = actions.some((action) => action.type === "compensate");
  const moved = toState(next);
  return {
    ...moved,
    compensations: compensate ? compensationsFor(next.context) : [],
    accepted: moved.step !== state.step || next.context !== current.context,
  };
}

/** Succeeded and Failed take no further events. */
export function isFinal(phase: Phase): boolean {
  return phase === "Succeeded" || phase === "Failed";
}
