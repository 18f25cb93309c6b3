// The operator's opt-in flag for unowned domains: empty means none, `*` all, else a list.
import { expect } from "chai";

import { allowsUnowned, parseUnownedDomainPolicy } from "../../../src/tenancy/unowned-policy.ts";

describe("the unowned-domain opt-in", () => {
  it("allows nobody when empty (the default)", () => {
    for (const text of ["", " ", ","]) {
      expect(
        allowsUnowned(parseUnownedDomainPolicy(text), "default"),
        JSON.stringify(text),
      ).to.equal(false);
    }
  });

  it("allows exactly the listed namespaces, spaces around commas allowed", () => {
    const policy = parseUnownedDomainPolicy("demo, team-a");
    expect(allowsUnowned(policy, "demo")).to.equal(true);
    expect(allowsUnowned(policy, "team-a")).to.equal(true);
    expect(allowsUnowned(policy, "team-b")).to.equal(false);
  });

  it("allows every namespace with *", () => {
    expect(allowsUnowned(parseUnownedDomainPolicy("*"), "anything")).to.equal(true);
  });

  it("refuses a bad entry, and * mixed with names, naming the problem", () => {
    expect(() => parseUnownedDomainPolicy("team_a")).to.throw(
      /"team_a" is not a Kubernetes namespace name/,
    );
    expect(() => parseUnownedDomainPolicy("*,team-a")).to.throw(/list nothing else/);
  });
});
