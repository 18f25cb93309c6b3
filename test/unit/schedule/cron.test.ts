// Cron expressions in a time zone: what is accepted, what is refused and how the message says what
// to fix, and the fire times around DST changes, month ends and leap days in real zones.
import { expect } from "chai";
import { parseSchedule, type CronSchedule } from "../../../src/schedule/cron.ts";

function schedule(expression: string, timeZone?: string): CronSchedule {
  const parsed = parseSchedule(expression, timeZone);
  if (!parsed.ok) throw new Error(parsed.problem.message);
  return parsed.schedule;
}

/** The first `n` fire times after `from`, as ISO strings in UTC. */
function firesAfter(s: CronSchedule, from: string, n: number): string[] {
  const out: string[] = [];
  let cursor: Date | undefined = new Date(from);
  while (out.length < n && (cursor = s.nextAfter(cursor))) out.push(cursor.toISOString());
  return out;
}

/** All fire times in [from, to) walking forward with nextAfter. */
function forward(s: CronSchedule, from: string, to: string): string[] {
  const out: string[] = [];
  let cursor = s.nextAfter(new Date(Date.parse(from) - 1));
  while (cursor && cursor.getTime() < Date.parse(to)) {
    out.push(cursor.toISOString());
    cursor = s.nextAfter(cursor);
  }
  return out;
}

/** All fire times in [from, to) walking backward with latestAtOrBefore. */
function backward(s: CronSchedule, from: string, to: string): string[] {
  const out: string[] = [];
  let cursor = s.latestAtOrBefore(new Date(Date.parse(to) - 1));
  while (cursor && cursor.getTime() >= Date.parse(from)) {
    out.unshift(cursor.toISOString());
    cursor = s.latestAtOrBefore(new Date(cursor.getTime() - 1));
  }
  return out;
}

describe("schedule cron: what is accepted", () => {
  for (const expression of [
    "0 * * * *",
    "*/15 * * * *",
    "30 2 * * *",
    "0 0 1-31/2 * *",
    "0 9 * JAN,jul MON-FRI",
    "0 0 * * 7",
    "5-59/15 8-18 * * 1-5",
    "@hourly",
    "@daily",
    "@midnight",
    "@weekly",
    "@monthly",
    "@yearly",
    "@annually",
  ]) {
    it(`accepts ${JSON.stringify(expression)}`, () => {
      expect(parseSchedule(expression).ok).to.equal(true);
    });
  }

  it("reads the fields in UTC when no time zone is given", () => {
    expect(firesAfter(schedule("0 3 * * *"), "2026-06-01T00:00:00Z", 1)).to.deep.equal([
      "2026-06-01T03:00:00.000Z",
    ]);
  });

  it("fires on a day matching either day field when both are restricted (Vixie cron, CronJob)", () => {
    // 29 February, or any Monday in February
    expect(firesAfter(schedule("0 0 29 2 1"), "2028-02-25T00:00:00Z", 3)).to.deep.equal([
      "2028-02-28T00:00:00.000Z", // a Monday
      "2028-02-29T00:00:00.000Z", // a Tuesday, the 29th
      "2029-02-05T00:00:00.000Z", // the next Monday in February
    ]);
  });
});

describe("schedule cron: refused with a message that says what to fix", () => {
  const refused: ReadonlyArray<[string, string | undefined, string, RegExp]> = [
    ["", undefined, "spec.schedule", /empty/],
    ["* * * *", undefined, "spec.schedule", /4 field\(s\); write exactly five/],
    ["0 * * * * *", undefined, "spec.schedule", /6 field\(s\).*no seconds/],
    ["61 * * * *", undefined, "spec.schedule", /minute field has 61, outside 0-59/],
    ["0 24 * * *", undefined, "spec.schedule", /hour field has 24, outside 0-23/],
    ["0 0 0 * *", undefined, "spec.schedule", /day of month field has 0, outside 1-31/],
    ["0 0 * 13 *", undefined, "spec.schedule", /month field has 13, outside 1-12/],
    ["0 0 * * 8", undefined, "spec.schedule", /day of week field has 8, outside 0-7/],
    ["? * * * *", undefined, "spec.schedule", /extensions such as \?, L, W and #/],
    ["0 0 L * *", undefined, "spec.schedule", /"L", which is not a day of month/],
    ["0 0 * * 1#2", undefined, "spec.schedule", /extensions/],
    ["0 0 * * MONDAY", undefined, "spec.schedule", /names allowed here: SUN, MON/],
    ["0 0 * MON *", undefined, "spec.schedule", /"MON", which is not a month/],
    ["5/15 * * * *", undefined, "spec.schedule", /write \*\/15 or 5-59\/15/],
    ["*/0 * * * *", undefined, "spec.schedule", /step "0" must be a positive number/],
    ["@reboot", undefined, "spec.schedule", /@-forms accepted are @hourly/],
    ["0 0 30 2 *", undefined, "spec.schedule", /never fires/],
    ["0 0 31 4,6 *", undefined, "spec.schedule", /never fires/],
    ["0 * * * *", "Mars/Olympus", "spec.timeZone", /not a known IANA time zone/],
    ["0 * * * *", "Europe Berlin", "spec.timeZone", /not an IANA time zone name/],
    ["0 * * * *", "", "spec.timeZone", /not an IANA time zone name/],
    ["0 * * * *", "+02:00", "spec.timeZone", /not an IANA time zone name/],
    ["0 * * * *", "utc", "spec.timeZone", /write UTC/],
    ["0 * * * *", "Local", "spec.timeZone", /not a known IANA time zone/],
    ["0 * * * *", "europe/berlin", "spec.timeZone", /write Europe\/Berlin/],
  ];
  refused.forEach(([expression, timeZone, field, message], index) => {
    it(`${index + 1} - ${JSON.stringify(expression)}${timeZone !== undefined ? ` in ${JSON.stringify(timeZone)}` : ""}: ${field}`, () => {
      const parsed = parseSchedule(expression, timeZone);
      expect(parsed.ok).to.equal(false);
      if (parsed.ok) return;
      expect(parsed.problem.field).to.equal(field);
      expect(parsed.problem.message).to.match(message);
      if (field === "spec.schedule")
        expect(parsed.problem.message).to.include(JSON.stringify(expression));
    });
  });
});

describe("schedule cron: DST in Europe/Berlin (2026: +1 → +2 on 29 March 02:00, +2 → +1 on 25 October 03:00)", () => {
  it("spring forward: 02:30 does not exist on 29 March; the daily run fires once, at 03:00 CEST", () => {
    expect(
      firesAfter(schedule("30 2 * * *", "Europe/Berlin"), "2026-03-28T00:00:00Z", 3),
    ).to.deep.equal([
      "2026-03-28T01:30:00.000Z", // 02:30 CET
      "2026-03-29T01:00:00.000Z", // 03:00 CEST, the first minute after the gap
      "2026-03-30T00:30:00.000Z", // 02:30 CEST
    ]);
  });

  it("fall back: 02:30 happens twice on 25 October; the daily run fires once, at the first", () => {
    expect(
      firesAfter(schedule("30 2 * * *", "Europe/Berlin"), "2026-10-24T12:00:00Z", 2),
    ).to.deep.equal([
      "2026-10-25T00:30:00.000Z", // 02:30 CEST; 02:30 CET an hour later does not fire
      "2026-10-26T01:30:00.000Z",
    ]);
  });

  it("fall back: a list of hours is a fixed time too, and fires once", () => {
    expect(
      firesAfter(schedule("30 2,14 * * *", "Europe/Berlin"), "2026-10-24T20:00:00Z", 2),
    ).to.deep.equal(["2026-10-25T00:30:00.000Z", "2026-10-25T13:30:00.000Z"]);
  });

  it("fall back: an hourly schedule fires in both real hours that read 02:00", () => {
    expect(
      firesAfter(schedule("0 * * * *", "Europe/Berlin"), "2026-10-24T23:30:00Z", 3),
    ).to.deep.equal([
      "2026-10-25T00:00:00.000Z", // 02:00 CEST
      "2026-10-25T01:00:00.000Z", // 02:00 CET
      "2026-10-25T02:00:00.000Z", // 03:00 CET
    ]);
  });

  it("spring forward: an hourly schedule has no 02:00 that day, and no extra run", () => {
    expect(
      firesAfter(schedule("@hourly", "Europe/Berlin"), "2026-03-28T23:30:00Z", 3),
    ).to.deep.equal([
      "2026-03-29T00:00:00.000Z", // 01:00 CET
      "2026-03-29T01:00:00.000Z", // 03:00 CEST
      "2026-03-29T02:00:00.000Z", // 04:00 CEST
    ]);
  });

  for (const [label, expression, from, to] of [
    ["spring, daily 02:30", "30 2 * * *", "2026-03-27T00:00:00Z", "2026-03-31T00:00:00Z"],
    ["fall, daily 02:30", "30 2 * * *", "2026-10-23T00:00:00Z", "2026-10-27T00:00:00Z"],
    ["spring, every 20 minutes", "*/20 * * * *", "2026-03-28T22:00:00Z", "2026-03-29T04:00:00Z"],
    ["fall, every 20 minutes", "*/20 * * * *", "2026-10-24T22:00:00Z", "2026-10-25T04:00:00Z"],
    [
      "fall, every 30 minutes in hour 2",
      "*/30 2 * * *",
      "2026-10-24T00:00:00Z",
      "2026-10-26T04:00:00Z",
    ],
  ] as const) {
    it(`the latest fire time agrees with the next fire time (${label})`, () => {
      const s = schedule(expression, "Europe/Berlin");
      const fires = forward(s, from, to);
      expect(fires.length).to.be.greaterThan(1);
      expect(backward(s, from, to)).to.deep.equal(fires);
    });
  }

  it("the latest fire time at an instant that is a fire time is that instant", () => {
    const s = schedule("30 2 * * *", "Europe/Berlin");
    const instant = new Date("2026-03-29T01:00:00Z");
    expect(s.latestAtOrBefore(instant)?.toISOString()).to.equal(instant.toISOString());
    expect(s.nextAfter(instant)?.toISOString()).to.equal("2026-03-30T00:30:00.000Z");
  });

  it("America/New_York changes on its own date (8 March 2026) and is read as such", () => {
    expect(
      firesAfter(schedule("30 2 * * *", "America/New_York"), "2026-03-06T12:00:00Z", 3),
    ).to.deep.equal([
      "2026-03-07T07:30:00.000Z", // 02:30 EST
      "2026-03-08T07:00:00.000Z", // 02:30 does not exist: 03:00 EDT
      "2026-03-09T06:30:00.000Z", // 02:30 EDT
    ]);
  });
});

describe("schedule cron: month ends and leap days", () => {
  it("the 31st fires only in months that have one", () => {
    expect(firesAfter(schedule("0 0 31 * *"), "2026-01-01T00:00:00Z", 7)).to.deep.equal([
      "2026-01-31T00:00:00.000Z",
      "2026-03-31T00:00:00.000Z",
      "2026-05-31T00:00:00.000Z",
      "2026-07-31T00:00:00.000Z",
      "2026-08-31T00:00:00.000Z",
      "2026-10-31T00:00:00.000Z",
      "2026-12-31T00:00:00.000Z",
    ]);
  });

  it("29 February fires in leap years only, both ways", () => {
    const s = schedule("0 12 29 2 *");
    expect(firesAfter(s, "2026-01-01T00:00:00Z", 2)).to.deep.equal([
      "2028-02-29T12:00:00.000Z",
      "2032-02-29T12:00:00.000Z",
    ]);
    expect(s.latestAtOrBefore(new Date("2027-06-01T00:00:00Z"))?.toISOString()).to.equal(
      "2024-02-29T12:00:00.000Z",
    );
  });

  it("@monthly in a zone east of UTC fires at local midnight, on the UTC evening before", () => {
    expect(
      firesAfter(schedule("@monthly", "Europe/Berlin"), "2026-01-15T00:00:00Z", 3),
    ).to.deep.equal([
      "2026-01-31T23:00:00.000Z",
      "2026-02-28T23:00:00.000Z",
      "2026-03-31T22:00:00.000Z", // CEST from 29 March
    ]);
  });
});
