// The tenancy decision, as a specification: deny by default, allow the namespaces the owner
// element names, let the operator opt in for unowned domains only, and give every denied tenant
// the same message whatever the cause.
import { expect } from "chai";

import { decideOwnership, type OwnershipFinding } from "../../../src/tenancy/decide.ts";
import { DENY_UNOWNED, parseUnownedDomainPolicy } from "../../../src/tenancy/unowned-policy.ts";

const UUID = "5b3c1f0e-8a7d-4d2c-9e61-0c4a7f1b2d10";
const request = { namespace: "team-a", domain: "db-01", node: "hv-02" };
const ownedBy = (...namespaces: string[]): OwnershipFinding => ({
  domain: "found",
  uuid: UUID,
  owner: { kind: "owner", namespaces },
});
const unowned: OwnershipFinding = { domain: "found", uuid: UUID, owner: undefined };
const missing: OwnershipFinding = { domain: "missing" };
const unusable: OwnershipFinding = {
  domain: "found",
  uuid: UUID,
  owner: { kind: "invalid", problem: '"Team-A" is not a Kubernetes namespace name' },
};

describe("decideOwnership", () => {
  it("allows a namespace the owner element names, pinned to the UUID it checked", () => {
    expect(decideOwnership(request, ownedBy("team-b", "team-a"), DENY_UNOWNED)).to.deep.equal({
      allowed: true,
      uuid: UUID,
      basis: "owner-element",
    });
  });

  it("denies Forbidden when the element names other namespaces, even with the opt-in for all", () => {
    const d = decideOwnership(request, ownedBy("team-b"), parseUnownedDomainPolicy("*"));
    expect(d).to.include({ allowed: false, reason: "Forbidden" });
  });

  it("denies a domain without an element by default", () => {
    expect(decideOwnership(request, unowned, DENY_UNOWNED)).to.include({
      allowed: false,
      reason: "Forbidden",
    });
  });

  it("allows a domain without an element to a namespace the operator opted in, or to all with *", () => {
    for (const flag of ["team-a", "demo,team-a", "*"]) {
      expect(decideOwnership(request, unowned, parseUnownedDomainPolicy(flag)), flag).to.deep.equal(
        {
          allowed: true,
          uuid: UUID,
          basis: "unowned-opt-in",
        },
      );
    }
    expect(decideOwnership(request, unowned, parseUnownedDomainPolicy("demo"))).to.include({
      allowed: false,
    });
  });

  it("denies a missing domain, even to an opted-in namespace", () => {
    expect(decideOwnership(request, missing, parseUnownedDomainPolicy("*"))).to.include({
      allowed: false,
      reason: "Forbidden",
    });
  });

  it("denies on an unusable element rather than treating it as absent (no opt-in fallback)", () => {
    expect(decideOwnership(request, unusable, parseUnownedDomainPolicy("*"))).to.include({
      allowed: false,
      reason: "Forbidden",
    });
  });

  it("denies an element that owns nothing", () => {
    expect(decideOwnership(request, ownedBy(), parseUnownedDomainPolicy("*"))).to.include({
      allowed: false,
    });
  });

  it("gives the same message for a missing domain, no element, another owner and a bad element", () => {
    const messages = [missing, unowned, ownedBy("team-b"), unusable, ownedBy()].map((f) => {
      const d = decideOwnership(request, f, DENY_UNOWNED);
      if (d.allowed) throw new Error("expected a denial");
      return d.message;
    });
    expect(new Set(messages).size).to.equal(1);
    expect(messages[0]).to.include("team-a").and.include('"db-01"').and.include("hv-02");
    // Nothing learnt on the host leaks into it: not the UUID, nor the owners.
    expect(messages[0]).to.not.include(UUID).and.not.include("team-b");
  });

  it("keeps the actual cause apart, for the agent's log", () => {
    const details = [missing, unowned, ownedBy("team-b"), unusable].map((f) => {
      const d = decideOwnership(request, f, DENY_UNOWNED);
      return d.allowed ? "" : d.logDetail;
    });
    expect(details[0]).to.match(/no domain/);
    expect(details[1]).to.match(/no vmsnap owner element/);
    expect(details[2]).to.match(/owned by team-b/);
    expect(details[3]).to.match(/unusable.*Team-A/);
  });
});
