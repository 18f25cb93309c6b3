import { expect } from "chai";
import { eventName, reportingInstance } from "../../../src/kube/event-names.ts";

describe("Event names the API server accepts", () => {
  it("keeps a short object name as it is", () => {
    expect(eventName("db-01", "abc1")).to.equal("db-01.abc1");
    expect(reportingInstance("hv-02")).to.equal("hv-02");
  });

  it("shortens a 253-character object name to a valid, distinct name", () => {
    const a = `${"a".repeat(200)}-${"x".repeat(52)}`;
    const b = `${"a".repeat(200)}-${"y".repeat(52)}`;
    const [na, nb] = [eventName(a, "mizs0f3k"), eventName(b, "mizs0f3k")];
    for (const n of [na, nb]) {
      expect(n.length).to.be.at.most(253);
      expect(n).to.match(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/);
      expect(n.endsWith(".mizs0f3k")).to.equal(true);
    }
    expect(na).to.not.equal(nb);
  });

  it("shortens a long node name to a 128-character reportingInstance, distinct per node", () => {
    const x = reportingInstance("n".repeat(200));
    const y = reportingInstance(`${"n".repeat(199)}m`);
    expect(x.length).to.equal(128);
    expect(x).to.not.equal(y);
  });
});
