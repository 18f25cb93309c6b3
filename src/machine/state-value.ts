// An xstate state value as the reconcile loop keeps it: the phase (the top-level state users see
// in status) and the step (the leaf state, `Phase.Sub`, which says which effect runs next).
import type { StateValue } from "xstate";

/** `{ Pending: "Armed" }` → ["Pending", "Pending.Armed"]; `"Frozen"` → ["Frozen", "Frozen"]. */
export function phaseAndStep(value: StateValue): [string, string] {
  if (typeof value === "string") return [value, value];
  const [phase, inner] = Object.entries(value)[0]!;
  return [phase, `${phase}.${phaseAndStep(inner!)[1]}`];
}

/** The state value of a step: `Pending.Armed` → `{ Pending: "Armed" }`. */
export function stateValueOf(step: string): StateValue {
  const [head, ...rest] = step.split(".");
  return rest.length === 0 ? head! : { [head!]: stateValueOf(rest.join(".")) };
}
