// domainMetadata: libvirt's "no such metadata" (code 80) is an answer — no element — and not
// a failure; every other failure keeps its typed reason.
import { expect } from "chai";

import { Hypervisor } from "../../../src/hypervisor/connection.ts";
import { classify } from "../../../src/hypervisor/errors.ts";
import { MetadataType, ModificationImpact } from "../../../src/hypervisor/flags.ts";
import { FakeBinding, nativeError } from "./fake-native.ts";

const URI = "https://vmsnap.io/xmlns/owner/v1";

async function open(binding: FakeBinding): Promise<Hypervisor> {
  return Hypervisor.open("test:///fake", { binding, callTimeoutMs: 1000 });
}

describe("Hypervisor.domainMetadata", () => {
  it("asks libvirt for the element in the namespace, by name, for the current definition", async () => {
    const binding = new FakeBinding();
    binding.script = { domainMetadata: async () => "<owner/>" };
    const hv = await open(binding);
    expect(await hv.domainMetadata("db-01", URI)).to.equal("<owner/>");
    expect(binding.connections[0]!.calls).to.deep.equal([
      ["domainMetadata", ["db-01", MetadataType.Element, URI, ModificationImpact.Current]],
    ]);
  });

  it("addresses the domain by UUID and passes the flags when asked to", async () => {
    const binding = new FakeBinding();
    const hv = await open(binding);
    await hv.domainMetadata("5b3c1f0e-8a7d-4d2c-9e61-0c4a7f1b2d10", URI, {
      byUUID: true,
      flags: ModificationImpact.Config,
    });
    expect(binding.connections[0]!.calls[0]).to.deep.equal([
      "domainMetadataByUUID",
      [
        "5b3c1f0e-8a7d-4d2c-9e61-0c4a7f1b2d10",
        MetadataType.Element,
        URI,
        ModificationImpact.Config,
      ],
    ]);
  });

  it("returns undefined when the domain has no element in that namespace (code 80)", async () => {
    const binding = new FakeBinding();
    binding.script = {
      domainMetadata: () => Promise.reject(nativeError(80, 20, "metadata not found")),
    };
    const hv = await open(binding);
    expect(await hv.domainMetadata("db-01", URI)).to.equal(undefined);
  });

  it("fails a missing domain with DomainNotFound, not as a missing element", async () => {
    const binding = new FakeBinding();
    binding.script = {
      domainMetadata: () => Promise.reject(nativeError(42, 12, "Domain not found")),
    };
    const hv = await open(binding);
    const err = await hv.domainMetadata("nope", URI).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).to.include({ reason: "DomainNotFound", operation: "domainMetadata" });
  });

  it("classifies code 80 as MetadataNotFound in the taxonomy", () => {
    expect(classify(80, 20, { operation: "domainMetadata" })).to.equal("MetadataNotFound");
  });
});
