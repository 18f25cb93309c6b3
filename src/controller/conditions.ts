// kstatus conditions (Ready, Reconciling, Stalled and a kind's own) with their transition times:
// a condition keeps its lastTransitionTime while its status stays the same, so `kubectl wait` and
// GitOps health checks see when something really changed. Pure.
import type { Condition } from "../api/types.ts";

export type WantedCondition = Omit<Condition, "lastTransitionTime">;

/** `wanted` stamped with transition times carried over from `previous` where unchanged. */
export function withTransitionTimes<T extends WantedCondition>(
  wanted: readonly T[],
  previous: readonly Condition[],
  now: number,
  generation: number | undefined,
): Array<T & Pick<Condition, "lastTransitionTime">> {
  return wanted.map((c) => {
    const before = previous.find((p) => p.type === c.type);
    const unchanged = before && before.status === c.status;
    return {
      ...c,
      ...(generation !== undefined ? { observedGeneration: generation } : {}),
      lastTransitionTime: unchanged ? before.lastTransitionTime : new Date(now).toISOString(),
    };
  });
}

/** An epoch-ms instant as status writes it. */
export function iso(ms: number | undefined): string | undefined {
  return ms === undefined ? undefined : new Date(ms).toISOString();
}

/** An instant read back from status, in epoch ms. */
export function toMs(text: string | undefined): number | undefined {
  return text === undefined ? undefined : Date.parse(text);
}

/** `{ [key]: value }` when value is defined, else `{}`: keeps absent fields absent in status. */
export function defined<K extends string, V>(key: K, value: V | undefined): { [P in K]?: V } {
  return value === undefined ? {} : ({ [key]: value } as { [P in K]: V });
}
