// The only way the controller drives the phase machine: restore the persisted phase and context,
// apply one event with xstate's pure transition(), and get back the next phase, its context and
// the compensations to run. No actor is ever started, so nothing is re-run or re-armed on restart.
import { initialTransition, transition } from "xstate";
import type { Phase } from "../api/types.ts";
import type { SnapshotContext, SnapshotInput } from "./context.ts";
import type { SnapshotEvent } from "./events.ts";
import { compensationsFor, snapshotMachine, type Compensation } from "./machine.ts";

export interface MachineState {
  readonly phase: Phase;
  readonly context: SnapshotContext;
}

export interface Step extends MachineState {
  /** What must be undone before the new phase is recorded, in order. */
  readonly compensations: readonly Compensation[];
  /** False when the machine ignored the event (it does not apply in this phase). */
  readonly accepted: boolean;
}

/** The machine state of a snapshot nobody has worked on yet. */
export function start(input: SnapshotInput): MachineState {
  const [snapshot] = initialTransition(snapshotMachine, input);
  return { phase: snapshot.value as Phase, context: snapshot.context };
}

/** Applies one event to a persisted state. Pure: same inputs, same result. */
export function step(state: MachineState, event: SnapshotEvent): Step {
  const current = snapshotMachine.resolveState({ value: state.phase, context: state.context });
  const [next, actions] = transition(snapshotMachine, current, event);
  const compensate = actions.some((action) => action.type === "compensate");
  return {
    phase: next.value as Phase,
    context: next.context,
    compensations: compensate ? compensationsFor(state.context) : [],
    accepted:
      next !== current && (next.value !== current.value || next.context !== current.context),
  };
}

/** Succeeded and Failed take no further events. */
export function isFinal(phase: Phase): boolean {
  return phase === "Succeeded" || phase === "Failed";
}
