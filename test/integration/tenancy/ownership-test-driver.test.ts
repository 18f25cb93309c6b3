// Ownership read from libvirt for real: virDomainGetMetadata through the addon against libvirt's
// test driver, whose domains declare owners in the forms provisioners write (prefixed, default
// namespace), carry another tool's metadata only, or none. Then the decision on what was read.
import { expect } from "chai";
import { fileURLToPath } from "node:url";

import { Hypervisor } from "../../../src/hypervisor/connection.ts";
import { parseDomainMemory } from "../../../src/hypervisor/domain-memory.ts";
import { HypervisorError } from "../../../src/hypervisor/errors.ts";
import { ModificationImpact } from "../../../src/hypervisor/flags.ts";
import { checkOwnership } from "../../../src/tenancy/check-ownership.ts";
import { decideOwnership } from "../../../src/tenancy/decide.ts";
import { OWNER_NAMESPACE_URI, parseOwnerElement } from "../../../src/tenancy/owner-element.ts";
import { readOwnership } from "../../../src/tenancy/read-ownership.ts";
import { DENY_UNOWNED, parseUnownedDomainPolicy } from "../../../src/tenancy/unowned-policy.ts";

const NODE_XML = fileURLToPath(new URL("../../fixtures/libvirt/tenancy-node.xml", import.meta.url));
const OWNED_BY_A_UUID = "0d7c5a1e-2b3f-4c6d-8e9f-a0b1c2d3e4f5";

describe("ownership on the libvirt test driver", function () {
  let hv: Hypervisor;
  beforeEach(async () => {
    hv = await Hypervisor.open(`test://${NODE_XML}`, { callTimeoutMs: 5000 });
  });
  afterEach(async () => {
    await hv.close();
  });

  describe("domainMetadata (virDomainGetMetadata)", () => {
    it("returns the vmsnap element without its prefix, by name and by UUID", async () => {
      const byName = await hv.domainMetadata("owned-by-team-a", OWNER_NAMESPACE_URI);
      expect(byName).to.match(/^<owner>\s*<namespace>team-a<\/namespace>\s*<\/owner>\s*$/);
      const byUUID = await hv.domainMetadata(OWNED_BY_A_UUID, OWNER_NAMESPACE_URI, {
        byUUID: true,
      });
      expect(byUUID).to.equal(byName);
    });

    it("reads the element written in the default-namespace form too", async () => {
      const xml = await hv.domainMetadata("shared-by-a-and-b", OWNER_NAMESPACE_URI);
      expect(parseOwnerElement(xml!)).to.deep.equal({
        kind: "owner",
        namespaces: ["team-a", "team-b"],
      });
    });

    it("returns undefined (libvirt's code 80) for a domain with no element in the namespace", async () => {
      expect(await hv.domainMetadata("unowned", OWNER_NAMESPACE_URI)).to.equal(undefined);
      // Another tool's element naming "team-a" is not ours.
      expect(await hv.domainMetadata("nova-only", OWNER_NAMESPACE_URI)).to.equal(undefined);
    });

    it("reads the live and the persistent definition of a running domain", async () => {
      for (const flags of [ModificationImpact.Live, ModificationImpact.Config]) {
        const xml = await hv.domainMetadata("owned-by-team-a", OWNER_NAMESPACE_URI, { flags });
        expect(xml, String(flags)).to.include("<namespace>team-a</namespace>");
      }
    });

    it("fails a missing domain with DomainNotFound (code 42), by name and by UUID", async () => {
      for (const call of [
        hv.domainMetadata("no-such-domain", OWNER_NAMESPACE_URI),
        hv.domainMetadata("9f9f9f9f-0000-4000-8000-000000000000", OWNER_NAMESPACE_URI, {
          byUUID: true,
        }),
      ]) {
        const err = await call.then(
          () => undefined,
          (e: unknown) => e,
        );
        expect(err).to.be.instanceOf(HypervisorError);
        expect(err).to.include({ reason: "DomainNotFound", code: 42, operation: "domainMetadata" });
      }
    });
  });

  describe("readOwnership + decideOwnership", () => {
    const ask = async (namespace: string, domain: string, optIn = DENY_UNOWNED) =>
      decideOwnership(
        { namespace, domain, node: "test-node" },
        await readOwnership(hv, { name: domain }),
        optIn,
      );

    it("allows team-a its domain and pins the UUID it checked", async () => {
      expect(await ask("team-a", "owned-by-team-a")).to.deep.equal({
        allowed: true,
        uuid: OWNED_BY_A_UUID,
        basis: "owner-element",
      });
    });

    it("denies team-b team-a's domain, and allows both on the shared one", async () => {
      expect(await ask("team-b", "owned-by-team-a")).to.include({
        allowed: false,
        reason: "Forbidden",
      });
      expect(await ask("team-b", "shared-by-a-and-b")).to.include({ allowed: true });
      expect(await ask("team-a", "shared-by-a-and-b")).to.include({ allowed: true });
    });

    it("denies unowned domains by default and allows them to an opted-in namespace", async () => {
      expect(await ask("team-a", "unowned")).to.include({ allowed: false });
      expect(await ask("team-a", "nova-only")).to.include({ allowed: false });
      expect(await ask("demo", "unowned", parseUnownedDomainPolicy("demo"))).to.include({
        allowed: true,
        basis: "unowned-opt-in",
      });
    });

    it("denies a domain whose element has a typo, even to an opted-in namespace", async () => {
      const d = await ask("team-a", "typo-in-owner", parseUnownedDomainPolicy("*"));
      expect(d).to.include({ allowed: false });
      expect(!d.allowed && d.logDetail).to.include("Team_A");
    });

    it("answers a missing domain exactly as a domain owned by someone else", async () => {
      const missing = await ask("team-b", "no-such-domain");
      const other = await ask("team-b", "owned-by-team-a");
      expect(missing.allowed || other.allowed).to.equal(false);
      const message = (d: typeof missing) => (d.allowed ? "" : d.message);
      expect(message(missing).replace("no-such-domain", "X")).to.equal(
        message(other).replace("owned-by-team-a", "X"),
      );
    });

    it("checkOwnership checks a pinned UUID again, whatever name it has now", async () => {
      const request = { namespace: "team-a", domain: "renamed-meanwhile", node: "test-node" };
      expect(
        await checkOwnership(hv, request, DENY_UNOWNED, { pinnedUuid: OWNED_BY_A_UUID }),
      ).to.include({ allowed: true, uuid: OWNED_BY_A_UUID });
      // Without the pin the name is looked up, and there is no such domain.
      expect(await checkOwnership(hv, request, DENY_UNOWNED)).to.include({ allowed: false });
      // A pinned domain that is gone is Forbidden too, not DomainNotFound.
      expect(
        await checkOwnership(hv, request, DENY_UNOWNED, {
          pinnedUuid: "9f9f9f9f-0000-4000-8000-000000000000",
        }),
      ).to.include({ allowed: false, reason: "Forbidden" });
    });

    it("checks by a pinned UUID as well as by name", async () => {
      const finding = await readOwnership(hv, { uuid: OWNED_BY_A_UUID });
      expect(finding).to.deep.include({ domain: "found", uuid: OWNED_BY_A_UUID });
    });
  });

  describe("the guest's RAM, for the memory folder's free-space check", () => {
    it("is read from the live XML libvirt writes, whatever unit the definition used", async () => {
      // Defined as 512 MiB / 256 MiB and as 2 GiB; libvirt writes KiB back.
      expect(parseDomainMemory(await hv.domainXml("owned-by-team-a"))).to.deep.equal({
        maximumBytes: 512 * 2 ** 20,
        currentBytes: 256 * 2 ** 20,
      });
      expect(parseDomainMemory(await hv.domainXml("shared-by-a-and-b"))).to.deep.equal({
        maximumBytes: 2 * 2 ** 30,
        currentBytes: 2 * 2 ** 30,
      });
    });
  });
});
