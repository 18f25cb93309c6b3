// Which names may reach the rbd command line, and how a domain's group is named.
import { expect } from "chai";
import { isStorageError } from "../../../src/storage/rbd/errors.ts";
import {
  assertValidName,
  groupNameForDomainUUID,
  legacyGroupNameForDomain,
  MAX_NAME_LENGTH,
  nameProblem,
} from "../../../src/storage/rbd/names.ts";
import { groupSnapPath, imagePath, imageSnapPath } from "../../../src/storage/rbd/specs.ts";

describe("RBD names", () => {
  describe("validation", () => {
    const accepted = [
      "rbd",
      "vm-100-disk-0",
      "csi-vol-8f1c2d3e-aaaa-bbbb-cccc-123456789abc",
      "volume_1.raw",
      "a+b:c=d",
      "_x",
      "9",
    ];
    for (const name of accepted) {
      it(`accepts ${JSON.stringify(name)}`, () => {
        expect(nameProblem("image", name)).to.equal(undefined);
      });
    }

    const refused: [string, string][] = [
      ["", "empty"],
      ["a;rm -rf /", "shell command separator"],
      ["$(id)", "command substitution"],
      ["a`id`", "backticks"],
      ["a|b", "pipe"],
      ["a&b", "background"],
      ["a>b", "redirection"],
      ["a'b", "quote"],
      ['a"b', "double quote"],
      ["a\\b", "backslash"],
      ["a*", "glob"],
      ["a b", "space"],
      ["a\tb", "tab"],
      ["a\nb", "newline"],
      ["a@b", "the snapshot separator"],
      ["a/b", "the pool/namespace separator"],
      ["-rf", "an option"],
      ["--pool=x", "a long option"],
      [".group.1_2_3", "Ceph's hidden names"],
      ["é", "non-ASCII"],
      ["x".repeat(MAX_NAME_LENGTH + 1), "too long"],
    ];
    for (const [name, why] of refused) {
      it(`refuses ${why}: ${JSON.stringify(name.length > 20 ? name.slice(0, 20) + "…" : name)}`, () => {
        expect(nameProblem("snapshot", name)).to.be.a("string");
        expect(() => assertValidName("snapshot", name))
          .to.throw()
          .that.satisfies((e: unknown) => isStorageError(e, "InvalidName"));
      });
    }

    it("accepts a name of exactly the maximum length", () => {
      expect(nameProblem("pool", "p".repeat(MAX_NAME_LENGTH))).to.equal(undefined);
    });

    it("validates every part of a spec while building it", () => {
      expect(imageSnapPath({ pool: "rbd", namespace: "t1", image: "img" }, "s")).to.equal(
        "rbd/t1/img@s",
      );
      expect(imagePath({ pool: "rbd", image: "img" })).to.equal("rbd/img");
      expect(groupSnapPath({ pool: "rbd", group: "g" }, "s")).to.equal("rbd/g@s");
      expect(() => imagePath({ pool: "rbd", namespace: "a/b", image: "img" })).to.throw(
        /namespace/,
      );
      expect(() => imageSnapPath({ pool: "rbd", image: "img" }, "s@t")).to.throw(/snapshot/);
    });
  });

  describe("groupNameForDomainUUID", () => {
    const uuid = "6695eb01-f6a4-8304-79aa-97f2502e193f";

    it("names the group after the domain's UUID, so two hosts' domains of one name never share it", () => {
      expect(groupNameForDomainUUID(uuid)).to.equal(`vmsnap-${uuid}`);
      expect(groupNameForDomainUUID("6695eb01-f6a4-8304-79aa-97f2502e1940")).to.not.equal(
        groupNameForDomainUUID(uuid),
      );
      expect(nameProblem("group", groupNameForDomainUUID(uuid))).to.equal(undefined);
    });

    it("spells a UUID one way whatever case libvirt was given it in", () => {
      expect(groupNameForDomainUUID(uuid.toUpperCase())).to.equal(`vmsnap-${uuid}`);
    });

    it("refuses anything that is not a UUID", () => {
      for (const bad of ["", "web-1", `${uuid}/x`, `-${uuid.slice(1)}`])
        expect(() => groupNameForDomainUUID(bad), bad).to.throw(/not a UUID/);
    });
  });

  describe("legacyGroupNameForDomain (groups of older releases)", () => {
    it("keeps a safe domain name readable", () => {
      expect(legacyGroupNameForDomain("web-1")).to.equal("vmsnap-web-1");
    });

    it("sanitises unsafe characters and adds a hash so sanitised names cannot collide", () => {
      const a = legacyGroupNameForDomain("db (prod)");
      const b = legacyGroupNameForDomain("db_(prod)");
      const c = legacyGroupNameForDomain("db__prod_");
      expect(a).to.match(/^vmsnap-db__prod_-[0-9a-f]{10}$/);
      expect(new Set([a, b, c]).size).to.equal(3);
      for (const name of [a, b, c]) expect(nameProblem("group", name)).to.equal(undefined);
    });

    it("is deterministic, so images in an old group are recognised", () => {
      expect(legacyGroupNameForDomain("db; rm -rf /")).to.equal(
        legacyGroupNameForDomain("db; rm -rf /"),
      );
    });

    it("bounds long names and keeps them distinct", () => {
      const long1 = legacyGroupNameForDomain("d".repeat(300) + "1");
      const long2 = legacyGroupNameForDomain("d".repeat(300) + "2");
      expect(long1.length).to.be.at.most(MAX_NAME_LENGTH);
      expect(long1).to.not.equal(long2);
      expect(nameProblem("group", long1)).to.equal(undefined);
    });

    it("refuses an empty domain name", () => {
      expect(() => legacyGroupNameForDomain("")).to.throw(/empty/);
    });
  });
});
