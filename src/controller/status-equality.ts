// Whether a status write would change anything: compared by value, so neither the order of keys
// (the API server returns them in its own order) nor a condition's lastTransitionTime (kept
// when its status did not change) makes an unchanged status look new.

/** True when `a` and `b` record the same facts (conditions' timestamps aside). */
export function sameStatus(a: object | undefined, b: object | undefined): boolean {
  return equal(withoutTransitionTimes(a), withoutTransitionTimes(b));
}

function withoutTransitionTimes(status: object | undefined): unknown {
  if (status === undefined) return {};
  const conditions = (status as { conditions?: unknown }).conditions;
  if (!Array.isArray(conditions)) return status;
  return {
    ...status,
    conditions: conditions.map((c: object) => {
      const { lastTransitionTime: _ignored, ...rest } = c as { lastTransitionTime?: string };
      return rest;
    }),
  };
}

/** Deep equality of JSON values; an absent key equals an undefined one. */
function equal(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a !== "object" || typeof b !== "object" || a === null || b === null) return false;
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  if (Array.isArray(a)) {
    const other = b as unknown[];
    return a.length === other.length && a.every((value, i) => equal(value, other[i]));
  }
  const left = a as Record<string, unknown>;
  const right = b as Record<string, unknown>;
  const keys = new Set([...Object.keys(left), ...Object.keys(right)]);
  for (const key of keys) if (!equal(left[key], right[key])) return false;
  return true;
}
