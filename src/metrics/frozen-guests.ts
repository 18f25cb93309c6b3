// Which guests are frozen right now, and since when. Both exported gauges are computed at scrape
// time from this one record, so they can never disagree and never drift: a missed `dec()` cannot
// leave `vmsnap_guests_frozen` at 1 forever. The longest-frozen gauge is what the "guest frozen
// too long" alert watches: it sees a freeze that is still going on, which the frozen-window
// histogram (observed only at thaw) cannot.
import { Gauge, type Registry } from "prom-client";

export interface FrozenGuests {
  /**
   * Records that the guest `key` (e.g. `namespace/name` of its VMSnapshot) is frozen since
   * `sinceMs` (epoch ms; default now). A restarted controller passes the persisted `frozenAt`
   * of a freeze an earlier instance began, so the gauge counts from the real start.
   */
  frozen(key: string, sinceMs?: number): void;
  /** Records that the guest `key` is thawed; unknown keys are ignored (thaw is idempotent). */
  thawed(key: string): void;
  /** How many guests are frozen now (what `vmsnap_guests_frozen` reports). */
  count(): number;
}

export function registerFrozenGuests(registry: Registry, now: () => number): FrozenGuests {
  const since = new Map<string, number>();
  new Gauge({
    name: "vmsnap_guests_frozen",
    help: "Number of guests this agent has frozen (filesystems quiesced) right now",
    registers: [registry],
    collect() {
      this.set(since.size);
    },
  });
  new Gauge({
    name: "vmsnap_longest_frozen_guest_seconds",
    help: "How long the guest frozen longest right now has been frozen, in seconds; 0 when none is",
    registers: [registry],
    collect() {
      const oldest = Math.min(...since.values());
      this.set(since.size === 0 ? 0 : Math.max(0, (now() - oldest) / 1000));
    },
  });
  return {
    frozen(key, sinceMs = now()) {
      // A repeated freeze of a guest already frozen keeps the earlier start: the guest has been
      // frozen since then, whatever the retry says.
      if (!since.has(key)) since.set(key, sinceMs);
    },
    thawed(key) {
      since.delete(key);
    },
    count: () => since.size,
  };
}
