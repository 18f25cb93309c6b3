// Run names: a function of the schedule and the instant, valid DNS-1123 labels, distinct for
// distinct schedules and instants, including the two 02:00s of a DST fall-back.
import { expect } from "chai";
import { MAX_NAME_LENGTH, runName, scheduleLabelValue } from "../../../src/schedule/names.ts";

const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const LABEL_VALUE = /^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$/;

describe("schedule run names", () => {
  const noon = new Date("2026-05-01T12:00:00Z");

  it("are <schedule>-<yyyymmddhhmm> in UTC for a short name", () => {
    expect(runName("db-01", noon)).to.equal("db-01-202605011200");
  });

  it("are the same for the same schedule and instant (a restarted agent finds its run)", () => {
    expect(runName("db-01", new Date(noon.getTime()))).to.equal(runName("db-01", noon));
    expect(runName("db-01", new Date("2026-05-01T12:00:42.5Z")), "seconds do not matter").to.equal(
      runName("db-01", noon),
    );
  });

  it("differ for the two real hours that read 02:00 at a DST fall-back", () => {
    const first = runName("db-01", new Date("2026-10-25T00:00:00Z")); // 02:00 CEST
    const second = runName("db-01", new Date("2026-10-25T01:00:00Z")); // 02:00 CET
    expect(first).to.not.equal(second);
  });

  it("keep a 50-character name whole and still fit 63 characters", () => {
    const name = "a".repeat(50);
    expect(runName(name, noon)).to.equal(`${name}-202605011200`);
    expect(runName(name, noon).length).to.equal(MAX_NAME_LENGTH);
  });

  for (const name of [
    "a".repeat(51),
    "b".repeat(253),
    `${"c".repeat(40)}-${"d".repeat(30)}`,
    `${"e".repeat(39)}.${"f".repeat(30)}`,
    "db.prod",
    "x".repeat(41) + "--tail-that-is-cut",
  ]) {
    it(`shorten ${name.length > 20 ? `a ${name.length}-character name` : JSON.stringify(name)} to a valid DNS label with a hash`, () => {
      const run = runName(name, noon);
      expect(run.length).to.be.at.most(MAX_NAME_LENGTH);
      expect(run).to.match(DNS_LABEL);
      expect(run).to.match(/-[0-9a-f]{8}-202605011200$/);
    });
  }

  it("differ for long names that share their first 50 characters", () => {
    const base = "n".repeat(60);
    expect(runName(`${base}-one`, noon)).to.not.equal(runName(`${base}-two`, noon));
  });

  it("differ for db.prod and db-prod", () => {
    expect(runName("db.prod", noon)).to.not.equal(runName("db-prod", noon));
  });

  it("label the runs with the schedule name when it fits a label value, else shortened with a hash", () => {
    expect(scheduleLabelValue("db-01")).to.equal("db-01");
    expect(scheduleLabelValue("db.prod")).to.equal("db.prod");
    const long = scheduleLabelValue("l".repeat(200));
    expect(long.length).to.be.at.most(63);
    expect(long).to.match(LABEL_VALUE);
    expect(long).to.not.equal(scheduleLabelValue(`${"l".repeat(199)}m`));
  });
});
