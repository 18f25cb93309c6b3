// The VMSnapshotSchedule CRD has one source of truth for its template: the file on disk is what
// tools/generate-schedule-crd.ts makes of the template and the VMSnapshot CRD, spec.template is
// the VMSnapshot spec schema (less its immutability), and the CRD's cron and time-zone rules
// never refuse what the agent's own validation accepts.
import { readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { expect } from "chai";
import { parse } from "yaml";
import { parseSchedule } from "../../../src/schedule/cron.ts";
import {
  renderScheduleCrd,
  SCHEDULE_CRD,
  SNAPSHOT_CRD,
} from "../../../tools/generate-schedule-crd.ts";

const REPO_ROOT = resolve(import.meta.dirname, "../../..");
const read = (path: string) => readFileSync(join(REPO_ROOT, path), "utf8");
const specOf = (crd: string) => parse(crd).spec.versions[0].schema.openAPIV3Schema.properties.spec;

describe("VMSnapshotSchedule CRD: generated from one source of truth", () => {
  it(`${SCHEDULE_CRD} is up to date (fix: node --import tsx tools/generate-schedule-crd.ts)`, async function () {
    this.timeout(20_000); // prettier's first load
    expect(read(SCHEDULE_CRD) === (await renderScheduleCrd()), `${SCHEDULE_CRD} is stale`).to.equal(
      true,
    );
  });

  it("spec.template is the VMSnapshot spec schema, mutable, with messages naming spec.template", () => {
    const snapshotSpec = specOf(read(SNAPSHOT_CRD));
    const template = specOf(read(SCHEDULE_CRD)).properties.template;
    expect(template.properties).to.deep.equal(snapshotSpec.properties);
    expect(template.required).to.deep.equal(snapshotSpec.required);
    const rules = (s: { "x-kubernetes-validations"?: Array<{ rule: string }> }) =>
      (s["x-kubernetes-validations"] ?? []).map((v) => v.rule);
    expect(rules(snapshotSpec)).to.include("self == oldSelf");
    expect(rules(template)).to.deep.equal(
      rules(snapshotSpec).filter((r) => r !== "self == oldSelf"),
    );
    expect(JSON.stringify(template["x-kubernetes-validations"])).to.include("spec.template.");
  });
});

describe("VMSnapshotSchedule CRD: its rules agree with the agent's validation", () => {
  const spec = specOf(read(SCHEDULE_CRD));
  /** The first CEL rule of a field, when it is `self.matches('<re>')`, as a JS RegExp. */
  const matcher = (field: string) => {
    const rule: string = spec.properties[field]["x-kubernetes-validations"][0].rule;
    const re = /^self\.matches\('(.*)'\)$/.exec(rule.trim());
    expect(re, `${field}: ${rule}`).to.not.equal(null);
    return new RegExp(re![1]!);
  };

  it("every schedule the agent accepts passes the CRD's rule, and the CRD refuses what it must", () => {
    const cron = matcher("schedule");
    for (const accepted of [
      "0 * * * *",
      "*/15 * * * *",
      "30 2,14 * * *",
      "0 9 * JAN,jul MON-FRI",
      "5-59/15 8-18 * * 1-5",
      "@hourly",
      "@daily",
      "@midnight",
      "@weekly",
      "@monthly",
      "@yearly",
      "@annually",
    ]) {
      expect(parseSchedule(accepted).ok, accepted).to.equal(true);
      expect(cron.test(accepted), accepted).to.equal(true);
    }
    for (const refused of ["* * * *", "0 * * * * *", "? * * * *", "0 0 * * 1#2", "@reboot", ""]) {
      expect(parseSchedule(refused).ok, refused).to.equal(false);
      expect(cron.test(refused), refused).to.equal(false);
    }
  });

  it("every time zone the agent accepts passes the CRD's name rule", function () {
    this.timeout(20_000); // ~420 zones, each parsed once
    const zone = matcher("timeZone");
    const zones = Intl.supportedValuesOf("timeZone");
    expect(zones.length).to.be.greaterThan(300);
    for (const name of [...zones, "UTC", "Etc/GMT+5", "America/Argentina/Buenos_Aires"]) {
      expect(parseSchedule("0 * * * *", name).ok, name).to.equal(true);
      expect(zone.test(name), name).to.equal(true);
    }
    for (const bad of ["Europe Berlin", "+02:00", "../etc/passwd", ""]) {
      expect(zone.test(bad), bad).to.equal(false);
    }
  });
});
