// The owner element as provisioners write it and libvirt returns it: read robustly, and
// anything that is not a clear list of namespaces is "invalid", never "no element".
import { expect } from "chai";

import { ownerElementXml, parseOwnerElement } from "../../../src/tenancy/owner-element.ts";

describe("the vmsnap owner element", () => {
  describe("reads", () => {
    it("the form virDomainGetMetadata returns (prefix removed, pretty-printed)", () => {
      const xml =
        "<owner>\n  <namespace>team-a</namespace>\n  <namespace>team-b</namespace>\n</owner>\n";
      expect(parseOwnerElement(xml)).to.deep.equal({
        kind: "owner",
        namespaces: ["team-a", "team-b"],
      });
    });

    it("the prefixed form a provisioner writes into the domain XML", () => {
      const xml =
        '<vmsnap:owner xmlns:vmsnap="https://vmsnap.io/xmlns/owner/v1">' +
        "<vmsnap:namespace>team-a</vmsnap:namespace></vmsnap:owner>";
      expect(parseOwnerElement(xml)).to.deep.equal({ kind: "owner", namespaces: ["team-a"] });
    });

    it("the default-namespace form, with whitespace around names and duplicates once", () => {
      const xml =
        '<owner xmlns="https://vmsnap.io/xmlns/owner/v1"><namespace> team-a </namespace>' +
        "<namespace>team-a</namespace></owner>";
      expect(parseOwnerElement(xml)).to.deep.equal({ kind: "owner", namespaces: ["team-a"] });
    });

    it("ignores comments, attributes and unknown children (room for later versions)", () => {
      const xml =
        '<owner since="2026"><!-- team A\'s database --><namespace>team-a</namespace>' +
        '<contact xmlns="urn:x">dba@example.com</contact></owner>';
      expect(parseOwnerElement(xml)).to.deep.equal({ kind: "owner", namespaces: ["team-a"] });
    });

    it("an empty element as owning nothing", () => {
      expect(parseOwnerElement("<owner/>")).to.deep.equal({ kind: "owner", namespaces: [] });
      expect(parseOwnerElement("<owner></owner>")).to.deep.equal({
        kind: "owner",
        namespaces: [],
      });
    });
  });

  describe("calls invalid", () => {
    const cases: Array<[string, string, RegExp]> = [
      ["malformed XML", "<owner><namespace>team-a</owner>", /well-formed/],
      ["another root element", "<tenant><namespace>team-a</namespace></tenant>", /<owner>/],
      ["an upper-case name", "<owner><namespace>Team-A</namespace></owner>", /"Team-A"/],
      ["an empty name", "<owner><namespace></namespace></owner>", /""/],
      ["a wildcard", "<owner><namespace>*</namespace></owner>", /"\*"/],
      ["a 64-character name", `<owner><namespace>${"a".repeat(64)}</namespace></owner>`, /not a/],
      ["a nested element", "<owner><namespace><name>a</name></namespace></owner>", /only/],
      [
        "one bad name among good ones",
        "<owner><namespace>a</namespace><namespace>b c</namespace></owner>",
        /"b c"/,
      ],
      ["nothing at all", "", /./],
    ];
    for (const [what, xml, problem] of cases) {
      it(`${what}`, () => {
        const parsed = parseOwnerElement(xml);
        expect(parsed.kind).to.equal("invalid");
        expect(parsed.kind === "invalid" && parsed.problem).to.match(problem);
      });
    }
  });

  it("renders the element a provisioner passes to `virsh metadata --set`, which reads back the same", () => {
    const xml = ownerElementXml(["team-a", "team-b"]);
    expect(xml).to.equal(
      "<owner><namespace>team-a</namespace><namespace>team-b</namespace></owner>",
    );
    expect(parseOwnerElement(xml)).to.deep.equal({
      kind: "owner",
      namespaces: ["team-a", "team-b"],
    });
    expect(() => ownerElementXml(["<script>"])).to.throw(/not a Kubernetes namespace name/);
  });
});
