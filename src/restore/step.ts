// The only way the reconcile loop drives the VMRestore machine: the recorded phase and context
// back into a machine state, one event applied with xstate's pure transition(), the next state.
import { initialTransition, transition } from "xstate";
import type { RestorePhase } from "../api/restore-types.ts";
import { phaseAndStep, stateValueOf } from "../machine/state-value.ts";
import { awaitingThaw, type RestoreContext, type RestoreInput } from "./context.ts";
import type { RestoreEvent } from "./events.ts";
import { restoreMachine } from "./machine.ts";

export interface RestoreState {
  readonly phase: RestorePhase;
  /** The leaf state: which effect runs next (`Pending.Validating`, `Resumed`, ...). */
  readonly step: string;
  readonly context: RestoreContext;
}

/** What a failure leaves to do: settle a restored guest that may still be frozen. */
export type RestoreCompensation = "settleGuest";

export interface RestoreStep extends RestoreState {
  readonly compensations: readonly RestoreCompensation[];
  readonly accepted: boolean;
}

type Snapshot = ReturnType<typeof restoreMachine.resolveState>;

function toState(snapshot: Snapshot): RestoreState {
  const [phase, step] = phaseAndStep(snapshot.value);
  return { phase: phase as RestorePhase, step, context: snapshot.context };
}

export function startRestore(input: RestoreInput): RestoreState {
  const [snapshot] = initialTransition(restoreMachine, input);
  return toState(snapshot);
}

/** A phase and context read back from status; the machine's routing settles the step. */
export function rehydrateRestore(phase: RestorePhase, context: RestoreContext): RestoreState {
  const recorded = restoreMachine.resolveState({ value: phase, context });
  const [settled] = transition(restoreMachine, recorded, { type: "REHYDRATED", at: 0 });
  return toState(settled);
}

/** Applies one event. Pure. */
export function stepRestore(state: RestoreState, event: RestoreEvent): RestoreStep {
  const current = restoreMachine.resolveState({
    value: stateValueOf(state.step),
    context: state.context,
  });
  const [next] = transition(restoreMachine, current, event);
  const moved = toState(next);
  const failedNow = moved.phase === "Failed" && state.phase !== "Failed";
  return {
    ...moved,
    // A failure after the RAM came back may leave the guest frozen (or paused): settle it.
    compensations: failedNow && awaitingThaw(moved.context) ? ["settleGuest"] : [],
    accepted: moved.step !== state.step || next.context !== current.context,
  };
}

export function isFinalRestore(phase: RestorePhase): boolean {
  return phase === "Succeeded" || phase === "Failed";
}
