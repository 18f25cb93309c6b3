// When a schedule runs, over a fake clock: on time, after an outage (one run, never a burst),
// past startingDeadline (skipped and counted), suspended, changed mid-way, and across DST.
import { expect } from "chai";
import { parseSchedule, type CronSchedule } from "../../../src/schedule/cron.ts";
import {
  decideRun,
  MAX_COUNTED_MISSED,
  periodAt,
  type RunDecision,
} from "../../../src/schedule/runs.ts";

function schedule(expression: string, timeZone?: string): CronSchedule {
  const parsed = parseSchedule(expression, timeZone);
  if (!parsed.ok) throw new Error(parsed.problem.message);
  return parsed.schedule;
}

const iso = (d: Date | undefined) => d?.toISOString();

function decide(
  s: CronSchedule,
  since: string,
  now: string,
  extra: { startingDeadlineMs?: number; suspend?: boolean } = {},
): RunDecision {
  return decideRun({
    schedule: s,
    since: new Date(since),
    now: new Date(now),
    suspend: extra.suspend ?? false,
    ...(extra.startingDeadlineMs !== undefined && { startingDeadlineMs: extra.startingDeadlineMs }),
  });
}

describe("schedule runs: on time", () => {
  const hourly = schedule("0 * * * *");

  it("runs nothing before the first instant after the schedule was created, and sleeps until it", () => {
    const d = decide(hourly, "2026-05-01T09:10:00Z", "2026-05-01T09:40:00Z");
    expect(d.due).to.equal(undefined);
    expect(d.missed).to.equal(0);
    expect(iso(d.next)).to.equal("2026-05-01T10:00:00.000Z");
    expect(d.requeueAfterMs).to.equal(20 * 60_000);
  });

  it("runs the instant at exactly that instant", () => {
    const d = decide(hourly, "2026-05-01T09:10:00Z", "2026-05-01T10:00:00Z");
    expect(iso(d.due)).to.equal("2026-05-01T10:00:00.000Z");
    expect(iso(d.considered)).to.equal("2026-05-01T10:00:00.000Z");
    expect(d.missed).to.equal(0);
    expect(d.requeueAfterMs).to.equal(3_600_000);
  });

  it("runs it when woken a little late, and sleeps until the next one", () => {
    const d = decide(hourly, "2026-05-01T09:00:00Z", "2026-05-01T10:00:00.350Z");
    expect(iso(d.due)).to.equal("2026-05-01T10:00:00.000Z");
    expect(d.requeueAfterMs).to.equal(3_600_000 - 350);
  });

  it("runs nothing twice: once an instant is considered, deciding again at once finds nothing due", () => {
    const first = decide(hourly, "2026-05-01T09:00:00Z", "2026-05-01T10:00:01Z");
    const again = decide(hourly, iso(first.considered)!, "2026-05-01T10:00:02Z");
    expect(again.due).to.equal(undefined);
    expect(again.considered).to.equal(undefined);
  });

  it("woken a little early (timer skew), runs nothing and sleeps the rest", () => {
    const d = decide(hourly, "2026-05-01T09:00:00Z", "2026-05-01T09:59:59.990Z");
    expect(d.due).to.equal(undefined);
    expect(d.requeueAfterMs).to.equal(10);
  });
});

describe("schedule runs: after an outage", () => {
  const hourly = schedule("0 * * * *");

  it("runs only the newest missed instant, late, and counts the others as missed (no burst)", () => {
    // 09:00 was the last decided; the agent was down from 09:10 to 12:20
    const d = decide(hourly, "2026-05-01T09:00:00Z", "2026-05-01T12:20:00Z");
    expect(iso(d.due)).to.equal("2026-05-01T12:00:00.000Z");
    expect(d.missed).to.equal(2); // 10:00 and 11:00
    expect(iso(d.considered)).to.equal("2026-05-01T12:00:00.000Z");
    expect(iso(d.next)).to.equal("2026-05-01T13:00:00.000Z");
  });

  it("skips the newest instant too when it is older than startingDeadline, and counts it", () => {
    const d = decide(hourly, "2026-05-01T09:00:00Z", "2026-05-01T12:20:00Z", {
      startingDeadlineMs: 10 * 60_000,
    });
    expect(d.due).to.equal(undefined);
    expect(iso(d.tooLate)).to.equal("2026-05-01T12:00:00.000Z");
    expect(d.missed).to.equal(3);
    expect(iso(d.considered), "decided: not reconsidered later").to.equal(
      "2026-05-01T12:00:00.000Z",
    );
    expect(d.requeueAfterMs).to.equal(40 * 60_000);
  });

  it("runs the newest instant when it is within startingDeadline", () => {
    const d = decide(hourly, "2026-05-01T09:00:00Z", "2026-05-01T12:05:00Z", {
      startingDeadlineMs: 10 * 60_000,
    });
    expect(iso(d.due)).to.equal("2026-05-01T12:00:00.000Z");
    expect(d.missed).to.equal(2);
  });

  it("stops counting missed instants at the cap after a very long outage, and says so", () => {
    const d = decide(schedule("* * * * *"), "2026-05-01T00:00:00Z", "2026-05-08T00:00:30Z");
    expect(iso(d.due)).to.equal("2026-05-08T00:00:00.000Z");
    expect(d.missed).to.equal(MAX_COUNTED_MISSED);
    expect(d.missedAtLeast).to.equal(true);
  });
});

describe("schedule runs: suspend", () => {
  const hourly = schedule("0 * * * *");

  it("runs nothing, decides nothing and does not wake up while suspended", () => {
    const d = decide(hourly, "2026-05-01T09:00:00Z", "2026-05-01T12:20:00Z", { suspend: true });
    expect(d).to.deep.equal({ missed: 0, missedAtLeast: false });
  });

  it("when resumed, runs the newest instant that passed meanwhile (as CronJob does) unless too late", () => {
    const resumed = decide(hourly, "2026-05-01T09:00:00Z", "2026-05-01T12:20:00Z");
    expect(iso(resumed.due)).to.equal("2026-05-01T12:00:00.000Z");
    const strict = decide(hourly, "2026-05-01T09:00:00Z", "2026-05-01T12:20:00Z", {
      startingDeadlineMs: 60_000,
    });
    expect(strict.due).to.equal(undefined);
  });
});

describe("schedule runs: the schedule changed mid-way", () => {
  it("reads the new expression from the last decided instant on", () => {
    // hourly until 10:00, then changed to daily at 03:00 at 10:30
    const daily = schedule("0 3 * * *");
    const d = decide(daily, "2026-05-01T10:00:00Z", "2026-05-01T10:30:00Z");
    expect(d.due).to.equal(undefined);
    expect(iso(d.next)).to.equal("2026-05-02T03:00:00.000Z");
  });

  it("an earlier time the same day runs once at once, late, unless startingDeadline forbids", () => {
    // daily at 03:00 ran at 03:00; at 05:30 it is changed to 04:00
    const changed = schedule("0 4 * * *");
    const d = decide(changed, "2026-05-01T03:00:00Z", "2026-05-01T05:30:00Z");
    expect(iso(d.due)).to.equal("2026-05-01T04:00:00.000Z");
    const strict = decide(changed, "2026-05-01T03:00:00Z", "2026-05-01T05:30:00Z", {
      startingDeadlineMs: 15 * 60_000,
    });
    expect(strict.due).to.equal(undefined);
    expect(strict.missed).to.equal(1);
  });

  it("a time zone changed mid-way moves the next run to the new zone's wall clock", () => {
    const berlin = schedule("0 3 * * *", "Europe/Berlin");
    const d = decide(berlin, "2026-05-01T03:00:00Z", "2026-05-01T05:30:00Z");
    expect(d.due).to.equal(undefined); // 03:00 CEST was 01:00Z, before the last run
    expect(iso(d.next)).to.equal("2026-05-02T01:00:00.000Z");
  });
});

describe("schedule runs: DST in Europe/Berlin, woken every five minutes", () => {
  /** Runs decideRun every five minutes from `from` to `to`, feeding `considered` back: the due runs. */
  function drive(s: CronSchedule, from: string, to: string): string[] {
    const runs: string[] = [];
    let since = new Date(from);
    for (let t = Date.parse(from); t <= Date.parse(to); t += 5 * 60_000) {
      const d = decideRun({ schedule: s, since, now: new Date(t), suspend: false });
      if (d.due) runs.push(d.due.toISOString());
      if (d.considered) since = d.considered;
    }
    return runs;
  }

  it("spring forward: the daily 02:30 runs once on 29 March, at 03:00 CEST", () => {
    expect(
      drive(
        schedule("30 2 * * *", "Europe/Berlin"),
        "2026-03-28T00:00:00Z",
        "2026-03-29T12:00:00Z",
      ),
    ).to.deep.equal(["2026-03-28T01:30:00.000Z", "2026-03-29T01:00:00.000Z"]);
  });

  it("fall back: the daily 02:30 runs once on 25 October although 02:30 happens twice", () => {
    expect(
      drive(
        schedule("30 2 * * *", "Europe/Berlin"),
        "2026-10-24T12:00:00Z",
        "2026-10-25T12:00:00Z",
      ),
    ).to.deep.equal(["2026-10-25T00:30:00.000Z"]);
  });

  it("fall back: the hourly runs 25 times on the 25-hour day", () => {
    const runs = drive(
      schedule("@hourly", "Europe/Berlin"),
      "2026-10-24T21:59:00Z",
      "2026-10-25T22:59:00Z",
    );
    expect(runs.length).to.equal(25); // local 00:00 .. 23:00 with 02:00 twice
    expect(new Set(runs).size).to.equal(25);
  });
});

describe("schedule runs: the period the missed-success alert measures by", () => {
  const HOUR = 3_600_000;
  const DAY = 24 * HOUR;

  it("an hourly schedule: one hour, at an instant and between two", () => {
    const hourly = schedule("0 * * * *");
    expect(periodAt(hourly, new Date("2026-05-01T10:00:00Z"))).to.equal(HOUR);
    expect(periodAt(hourly, new Date("2026-05-01T10:59:59Z"))).to.equal(HOUR);
  });

  it("weekdays at 02:00: three days from Friday's run until Monday's (the weekend), one day otherwise", () => {
    const weekdays = schedule("0 2 * * 1-5");
    // 2026-05-01 is a Friday, 2026-05-04 a Monday
    expect(periodAt(weekdays, new Date("2026-05-01T01:59:00Z")), "Friday 01:59").to.equal(DAY);
    expect(periodAt(weekdays, new Date("2026-05-01T02:00:00Z")), "Friday 02:00").to.equal(3 * DAY);
    expect(periodAt(weekdays, new Date("2026-05-03T12:00:00Z")), "Sunday").to.equal(3 * DAY);
    expect(periodAt(weekdays, new Date("2026-05-04T02:00:00Z")), "Monday 02:00").to.equal(DAY);
  });

  it("follows the wall clock across DST: the daily run's period is 23 hours into the day clocks go forward", () => {
    const daily = schedule("0 12 * * *", "Europe/Berlin");
    expect(periodAt(daily, new Date("2026-03-28T12:00:00Z"))).to.equal(23 * HOUR);
    expect(periodAt(daily, new Date("2026-03-29T11:00:00Z"))).to.equal(DAY);
  });
});
