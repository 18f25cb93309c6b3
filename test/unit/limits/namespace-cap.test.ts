// The per-namespace cap on snapshots in flight on one node.
import { expect } from "chai";

import { NamespaceCap } from "../../../src/limits/namespace-cap.ts";

describe("NamespaceCap", () => {
  it("lets a namespace have at most N snapshots in flight; the next one waits", () => {
    const cap = new NamespaceCap(2);
    expect(cap.claim("team-a", "team-a/s1")).to.equal(true);
    expect(cap.claim("team-a", "team-a/s2")).to.equal(true);
    expect(cap.claim("team-a", "team-a/s3")).to.equal(false);
    expect(cap.inFlight("team-a")).to.equal(2);
  });

  it("does not let one namespace's burst hold back another's", () => {
    const cap = new NamespaceCap(1);
    expect(cap.claim("team-a", "team-a/s1")).to.equal(true);
    expect(cap.claim("team-a", "team-a/s2")).to.equal(false);
    expect(cap.claim("team-b", "team-b/s1")).to.equal(true);
  });

  it("re-claiming a held place is a no-op (reconciles repeat)", () => {
    const cap = new NamespaceCap(1);
    expect(cap.claim("team-a", "team-a/s1")).to.equal(true);
    expect(cap.claim("team-a", "team-a/s1")).to.equal(true);
    expect(cap.inFlight("team-a")).to.equal(1);
  });

  it("frees the place on release, and releasing twice or unknown keys is harmless", () => {
    const cap = new NamespaceCap(1);
    cap.claim("team-a", "team-a/s1");
    cap.release("team-a/s1");
    cap.release("team-a/s1");
    cap.release("never/held");
    expect(cap.inFlight("team-a")).to.equal(0);
    expect(cap.claim("team-a", "team-a/s2")).to.equal(true);
  });

  it("refuses a cap that is not a whole number of at least 1", () => {
    for (const bad of [0, -1, 1.5, Number.NaN])
      expect(() => new NamespaceCap(bad), String(bad)).to.throw();
  });
});
