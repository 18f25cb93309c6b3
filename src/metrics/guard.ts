// The thaw guard's own state, as the controller exports it. The guard is a process of its own
// with no metrics endpoint; it reports its state in protocol replies (guard/guard-state.ts) and
// the controller turns each report into these series. Also the count of thaws that could not be
// confirmed (a domain lost while frozen, a thaw refused), which the guard's reports end with.
import { Counter, Gauge, type Registry } from "prom-client";
import type { LabelledCounter, PlainCounter } from "./typed.ts";

/** One report of the guard's state (structurally the protocol's `state` reply). */
export interface GuardStateSample {
  readonly armed: number;
  readonly thawing: number;
  readonly overdue: number;
  /** Failed thaw tries retried since that guard started: a counter of its own. */
  readonly retries: number;
}

export type UnconfirmedOutcome = "lost" | "failed";

export interface GuardMetrics {
  /** Records a state report of the guard whose pid is `guardPid`. */
  guardState(sample: GuardStateSample, guardPid: number | undefined): void;
  /** A thaw after a freeze ended without being confirmed. */
  thawUnconfirmed(outcome: UnconfirmedOutcome): void;
}

/** What `vmsnap_guard_thaw_retries_total` grows by for a report: a new guard (another pid, or
 *  a count that went down) counts from zero, so its whole count is new. */
export function retriesAdded(
  previous: { pid: number | undefined; retries: number } | undefined,
  pid: number | undefined,
  retries: number,
): number {
  if (previous === undefined || previous.pid !== pid || retries < previous.retries) return retries;
  return retries - previous.retries;
}

export function registerGuardMetrics(registry: Registry): GuardMetrics {
  const registers = [registry];
  const armed = new Gauge({
    name: "vmsnap_guard_armed_entries",
    help: "Entries the thaw guard holds that wait for their deadline",
    registers,
  });
  const thawing = new Gauge({
    name: "vmsnap_guard_thaws_in_progress",
    help: "Thaws the guard has fired and not yet confirmed, retried until they are",
    registers,
  });
  const overdue = new Gauge({
    name: "vmsnap_guard_overdue_thaws",
    help: "Guard entries past their deadline whose thaw is not confirmed yet: guests that may still be frozen",
    registers,
  });
  const retries: PlainCounter = new Counter({
    name: "vmsnap_guard_thaw_retries_total",
    help: "Failed thaw tries the guard retried (libvirtd down or slow, guest agent silent)",
    registers,
  });
  const unconfirmed: LabelledCounter<{ outcome: UnconfirmedOutcome }> = new Counter({
    name: "vmsnap_thaws_unconfirmed_total",
    help: "Freezes whose thaw could not be confirmed, by outcome (lost: the domain was not found, it may be frozen elsewhere; failed: refused)",
    labelNames: ["outcome"] as const,
    registers,
  });
  for (const outcome of ["lost", "failed"] as const) unconfirmed.inc({ outcome }, 0);
  let last: { pid: number | undefined; retries: number } | undefined;
  return {
    guardState(sample, pid) {
      armed.set(sample.armed);
      thawing.set(sample.thawing);
      overdue.set(sample.overdue);
      const added = retriesAdded(last, pid, sample.retries);
      if (added > 0) retries.inc(added);
      last = { pid, retries: sample.retries };
    },
    thawUnconfirmed(outcome) {
      unconfirmed.inc({ outcome });
    },
  };
}
