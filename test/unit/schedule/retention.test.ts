// Retention: which Succeeded snapshots the keep rules keep (Proxmox/Borg semantics, periods on the
// schedule's wall clock), Failed ones apart, in-progress ones never pruned, and why each is kept.
import { expect } from "chai";
import {
  applyRetention,
  isoWeek,
  type RetentionCandidate,
  type RetentionPhase,
} from "../../../src/schedule/retention.ts";

const BERLIN = "Europe/Berlin";
const local = new Intl.DateTimeFormat("sv-SE", {
  timeZone: BERLIN,
  dateStyle: "short",
  timeStyle: "short",
});

function snapshot(time: string, phase: RetentionPhase = "Succeeded"): RetentionCandidate {
  return { name: `s-${Date.parse(time)}`, phase, time: new Date(time) };
}

/** The Berlin wall-clock times ("2026-05-20 12:00") of the kept snapshots with each reason. */
function keptByReason(
  snapshots: readonly RetentionCandidate[],
  decision: ReturnType<typeof applyRetention>,
): Record<string, string[]> {
  const byName = new Map(snapshots.map((s) => [s.name, s]));
  const out: Record<string, string[]> = {};
  for (const { name, reason } of decision.keep) {
    (out[reason] ??= []).push(local.format(byName.get(name)!.time));
  }
  return out;
}

/** Hourly snapshots, every hour on the hour, from `from` up to and including `to` (UTC). */
function hourly(from: string, to: string): RetentionCandidate[] {
  const out: RetentionCandidate[] = [];
  for (let t = Date.parse(from); t <= Date.parse(to); t += 3_600_000) {
    out.push(snapshot(new Date(t).toISOString()));
  }
  return out;
}

describe("schedule retention: keep rules (Proxmox/Borg semantics)", () => {
  it("db-01, hourly for two months, keep 24 hourly / 7 daily / 4 weekly: 24 hours, then 7 older days, then 4 older weeks", () => {
    // Wednesday 20 May 2026 12:00 CEST is the newest
    const snapshots = hourly("2026-03-20T00:00:00Z", "2026-05-20T10:00:00Z");
    const decision = applyRetention(
      snapshots,
      { keepHourly: 24, keepDaily: 7, keepWeekly: 4 },
      BERLIN,
    );
    const kept = keptByReason(snapshots, decision);

    expect(kept.KeepHourly).to.have.length(24);
    expect(kept.KeepHourly![0]).to.equal("2026-05-20 12:00");
    expect(kept.KeepHourly![23]).to.equal("2026-05-19 13:00");
    // 19 and 20 May already hold a kept snapshot: the 7 days are the 7 before them, each its newest
    expect(kept.KeepDaily).to.deep.equal([
      "2026-05-18 23:00",
      "2026-05-17 23:00",
      "2026-05-16 23:00",
      "2026-05-15 23:00",
      "2026-05-14 23:00",
      "2026-05-13 23:00",
      "2026-05-12 23:00",
    ]);
    // ISO weeks of 18 May and 11 May are covered; then the Sunday 23:00 of 4 older weeks
    expect(kept.KeepWeekly).to.deep.equal([
      "2026-05-10 23:00",
      "2026-05-03 23:00",
      "2026-04-26 23:00",
      "2026-04-19 23:00",
    ]);
    expect(decision.keep).to.have.length(35);
    expect(decision.prune).to.have.length(snapshots.length - 35);
    expect(new Set(decision.prune.map((p) => p.reason))).to.deep.equal(
      new Set(["OutsideRetention"]),
    );
  });

  it("keepLast keeps the newest N, and a period rule only reaches past them", () => {
    const snapshots = hourly("2026-05-18T00:00:00Z", "2026-05-20T10:00:00Z");
    const kept = keptByReason(
      snapshots,
      applyRetention(snapshots, { keepLast: 3, keepDaily: 2 }, BERLIN),
    );
    expect(kept.KeepLast).to.deep.equal([
      "2026-05-20 12:00",
      "2026-05-20 11:00",
      "2026-05-20 10:00",
    ]);
    expect(kept.KeepDaily).to.deep.equal(["2026-05-19 23:00", "2026-05-18 23:00"]);
  });

  it("counts days that have snapshots, not calendar days: a gap costs no slot", () => {
    const snapshots = [
      snapshot("2026-05-20T08:00:00Z"),
      snapshot("2026-05-10T08:00:00Z"), // ten days earlier
      snapshot("2026-05-01T08:00:00Z"),
    ];
    const decision = applyRetention(snapshots, { keepDaily: 2 }, BERLIN);
    expect(keptByReason(snapshots, decision).KeepDaily).to.deep.equal([
      "2026-05-20 10:00",
      "2026-05-10 10:00",
    ]);
    expect(decision.prune.map((p) => p.name)).to.deep.equal([snapshots[2]!.name]);
  });

  it("keepMonthly counts months of the schedule's time zone (31 January 23:30 UTC is February in Berlin)", () => {
    const snapshots = [
      snapshot("2026-02-10T12:00:00Z"),
      snapshot("2026-01-31T23:30:00Z"),
      snapshot("2026-01-31T22:30:00Z"),
    ];
    const decision = applyRetention(snapshots, { keepMonthly: 2 }, BERLIN);
    expect(keptByReason(snapshots, decision).KeepMonthly).to.deep.equal([
      "2026-02-10 13:00",
      "2026-01-31 23:30",
    ]);
    const inUtc = applyRetention(snapshots, { keepMonthly: 2 }, "UTC");
    expect(inUtc.keep.map((k) => k.name)).to.deep.equal([snapshots[0]!.name, snapshots[1]!.name]);
  });

  it("treats the two real hours that read 02:00 at a DST fall-back as one hour on the clock", () => {
    const snapshots = [
      snapshot("2026-10-25T02:00:00Z"), // 03:00 CET
      snapshot("2026-10-25T01:00:00Z"), // 02:00 CET
      snapshot("2026-10-25T00:00:00Z"), // 02:00 CEST
      snapshot("2026-10-24T23:00:00Z"), // 01:00 CEST
    ];
    const decision = applyRetention(snapshots, { keepHourly: 3 }, BERLIN);
    expect(decision.keep.map((k) => k.name)).to.deep.equal([
      snapshots[0]!.name,
      snapshots[1]!.name,
      snapshots[3]!.name,
    ]);
    expect(decision.prune.map((p) => p.name)).to.deep.equal([snapshots[2]!.name]);
  });

  it("keeps every Succeeded snapshot when no keep rule is set (nothing is pruned by accident)", () => {
    const snapshots = hourly("2026-05-20T00:00:00Z", "2026-05-20T05:00:00Z");
    for (const rules of [{}, { keepLast: 0, keepDaily: 0 }, { keepFailed: 1 }]) {
      const decision = applyRetention(snapshots, rules, BERLIN);
      expect(decision.prune).to.deep.equal([]);
      expect(new Set(decision.keep.map((k) => k.reason))).to.deep.equal(
        new Set(["NoRetentionRules"]),
      );
    }
  });
});

describe("schedule retention: Failed and in-progress snapshots", () => {
  it("Failed snapshots never count towards keepLast; the newest 3 are kept apart, older ones pruned", () => {
    const snapshots = [
      snapshot("2026-05-20T10:00:00Z", "Failed"),
      snapshot("2026-05-20T09:00:00Z", "Succeeded"),
      snapshot("2026-05-20T08:00:00Z", "Failed"),
      snapshot("2026-05-20T07:00:00Z", "Failed"),
      snapshot("2026-05-20T06:00:00Z", "Succeeded"),
      snapshot("2026-05-20T05:00:00Z", "Failed"),
      snapshot("2026-05-20T04:00:00Z", "Succeeded"),
      snapshot("2026-05-20T03:00:00Z", "Failed"),
    ];
    const decision = applyRetention(snapshots, { keepLast: 2 }, BERLIN);
    const reasonOf = (i: number) =>
      [...decision.keep, ...decision.prune].find((d) => d.name === snapshots[i]!.name)!.reason;
    expect(snapshots.map((_, i) => reasonOf(i))).to.deep.equal([
      "KeepFailed",
      "KeepLast",
      "KeepFailed",
      "KeepFailed",
      "KeepLast",
      "OlderFailure",
      "OutsideRetention",
      "OlderFailure",
    ]);
  });

  it("keepFailed: 0 prunes every Failed snapshot", () => {
    const snapshots = [
      snapshot("2026-05-20T10:00:00Z", "Failed"),
      snapshot("2026-05-20T09:00:00Z"),
    ];
    const decision = applyRetention(snapshots, { keepLast: 1, keepFailed: 0 }, BERLIN);
    expect(decision.prune).to.deep.equal([{ name: snapshots[0]!.name, reason: "OlderFailure" }]);
  });

  it("never prunes a snapshot in progress, however old, and it takes no slot", () => {
    const snapshots = [
      snapshot("2026-05-20T10:00:00Z", "InProgress"),
      snapshot("2026-05-20T09:00:00Z"),
      snapshot("2026-05-20T08:00:00Z"),
      snapshot("2026-01-01T00:00:00Z", "InProgress"),
    ];
    const decision = applyRetention(snapshots, { keepLast: 1 }, BERLIN);
    expect(decision.keep).to.deep.equal([
      { name: snapshots[0]!.name, reason: "InProgress" },
      { name: snapshots[1]!.name, reason: "KeepLast" },
      { name: snapshots[3]!.name, reason: "InProgress" },
    ]);
    expect(decision.prune).to.deep.equal([
      { name: snapshots[2]!.name, reason: "OutsideRetention" },
    ]);
  });
});

describe("schedule retention: ISO weeks", () => {
  it("start on Monday and put the days around New Year in the right week-year", () => {
    expect(isoWeek(2026, 1, 1)).to.equal("2026-W01"); // a Thursday
    expect(isoWeek(2026, 12, 31)).to.equal("2026-W53");
    expect(isoWeek(2027, 1, 3)).to.equal("2026-W53"); // a Sunday
    expect(isoWeek(2027, 1, 4)).to.equal("2027-W01"); // the Monday after
    expect(isoWeek(2024, 12, 30)).to.equal("2025-W01");
    expect(isoWeek(2026, 5, 17)).to.not.equal(isoWeek(2026, 5, 18)); // Sunday, Monday
  });
});
