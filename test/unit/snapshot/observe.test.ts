// `vmsnap_guests_frozen` must not forget a guest whose thaw nobody confirmed: a snapshot that
// failed while frozen stays counted until the thaw guard reports how its thaw ended, so the
// frozen-too-long alert can fire while libvirtd is down; a lost domain is counted as such.
import { expect } from "chai";

import type { VMSnapshot } from "../../../src/api/types.ts";
import type { SnapshotContext } from "../../../src/machine/context.ts";
import { restore } from "../../../src/machine/step.ts";
import { createMetrics } from "../../../src/metrics/index.ts";
import { MetricsObserver } from "../../../src/snapshot/observe.ts";
import { parseExposition, valueOf } from "../../support/exposition.ts";

const T0 = 1_700_000_000_000;
const snapshot = {
  metadata: { namespace: "ns", name: "s1", uid: "uid-1" },
  spec: { source: { domain: "vm-a" } },
} as VMSnapshot;
const base: SnapshotContext = {
  memory: false,
  memoryMode: "Paused",
  quiesce: "IfAvailable",
  freezeTimeoutMs: 10_000,
  failureDeadlineMs: 300_000,
  startedAt: T0,
  disks: [],
};
const frozen = { ...base, freezeDeadline: T0 + 10_000, frozenAt: T0 + 100, quiesced: true };
const error = { reason: "FreezeTimeout" as const, message: "m" };

function setup() {
  const metrics = createMetrics(undefined, { defaultMetrics: false });
  const observer = new MetricsObserver(metrics);
  const scrape = async () => {
    const e = parseExposition(await metrics.registry.metrics());
    return {
      frozen: valueOf(e, "vmsnap_guests_frozen"),
      lost: valueOf(e, "vmsnap_thaws_unconfirmed_total", { outcome: "lost" }),
    };
  };
  observer.transition(snapshot, restore("Pending", base), restore("Frozen", frozen));
  return { observer, scrape };
}

describe("metrics of a failure while frozen", () => {
  it("keeps the guest counted frozen after Failed until the guard reports its thaw", async () => {
    const { observer, scrape } = setup();
    observer.transition(
      snapshot,
      restore("Frozen", frozen),
      restore("Failed", { ...frozen, error }),
    );
    expect(await scrape()).to.deep.equal({ frozen: 1, lost: 0 });
    observer.guardFired({ id: "uid-1", outcome: "thawed" });
    expect(await scrape()).to.deep.equal({ frozen: 0, lost: 0 });
  });

  it("counts a lost domain as unconfirmed, not as thawed, and stops counting it frozen", async () => {
    const { observer, scrape } = setup();
    observer.transition(
      snapshot,
      restore("Frozen", frozen),
      restore("Failed", { ...frozen, error }),
    );
    observer.guardFired({ id: "uid-1", outcome: "lost" });
    expect(await scrape()).to.deep.equal({ frozen: 0, lost: 1 });
  });

  it("takes a guard report that came before the failure into account", async () => {
    const { observer, scrape } = setup();
    observer.guardFired({ id: "uid-1", outcome: "thawed" });
    observer.transition(
      snapshot,
      restore("Frozen", frozen),
      restore("Failed", { ...frozen, error }),
    );
    expect(await scrape()).to.deep.equal({ frozen: 0, lost: 0 });
  });

  it("stops counting at once a failure whose thaw this process saw", async () => {
    const { observer, scrape } = setup();
    const thawed = { ...frozen, thawedAt: T0 + 500, error };
    observer.transition(snapshot, restore("Frozen", frozen), restore("Failed", thawed));
    expect(await scrape()).to.deep.equal({ frozen: 0, lost: 0 });
  });
});
