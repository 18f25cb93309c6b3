// The guest's RAM from the domain XML, in libvirt's units.
import { expect } from "chai";

import { parseDomainMemory } from "../../../src/hypervisor/domain-memory.ts";

const domain = (inner: string) => `<domain type='kvm'><name>vm</name>${inner}</domain>`;

describe("parseDomainMemory", () => {
  it("reads KiB when no unit is given (libvirt's default)", () => {
    expect(parseDomainMemory(domain("<memory>131072</memory>"))).to.deep.equal({
      maximumBytes: 128 * 2 ** 20,
      currentBytes: 128 * 2 ** 20,
    });
  });

  it("takes the balloon's <currentMemory> as the current size, <memory> as the maximum", () => {
    const xml = domain(
      "<memory unit='KiB'>8388608</memory><currentMemory unit='KiB'>2097152</currentMemory>",
    );
    expect(parseDomainMemory(xml)).to.deep.equal({
      maximumBytes: 8 * 2 ** 30,
      currentBytes: 2 * 2 ** 30,
    });
  });

  it("knows libvirt's binary and decimal units", () => {
    const cases: Array<[string, number]> = [
      ["b", 1],
      ["bytes", 1],
      ["k", 1024],
      ["KiB", 1024],
      ["KB", 1000],
      ["M", 2 ** 20],
      ["MiB", 2 ** 20],
      ["MB", 1e6],
      ["G", 2 ** 30],
      ["GiB", 2 ** 30],
      ["GB", 1e9],
      ["TiB", 2 ** 40],
      ["TB", 1e12],
    ];
    for (const [unit, factor] of cases) {
      expect(
        parseDomainMemory(domain(`<memory unit='${unit}'>3</memory>`)).maximumBytes,
        unit,
      ).to.equal(3 * factor);
    }
  });

  it("reads the XML as libvirt formats it (metadata before memory, whitespace around)", () => {
    const xml = `<domain type='test' id='1'>
  <name>test</name>
  <metadata>
    <vmsnap:owner xmlns:vmsnap="https://vmsnap.io/xmlns/owner/v1"><vmsnap:namespace>a</vmsnap:namespace></vmsnap:owner>
  </metadata>
  <memory unit='KiB'>8388608</memory>
  <currentMemory unit='KiB'>2097152</currentMemory>
</domain>`;
    expect(parseDomainMemory(xml)).to.deep.equal({
      maximumBytes: 8 * 2 ** 30,
      currentBytes: 2 * 2 ** 30,
    });
  });

  it("refuses XML it cannot size an image from, saying why", () => {
    expect(() => parseDomainMemory("<network/>")).to.throw(/no <domain>/);
    expect(() => parseDomainMemory(domain("<vcpu>1</vcpu>"))).to.throw(/no <memory>/);
    expect(() => parseDomainMemory(domain("<memory unit='parsecs'>1</memory>"))).to.throw(
      /unknown unit/,
    );
    expect(() => parseDomainMemory(domain("<memory>-5</memory>"))).to.throw(/whole number/);
    expect(() => parseDomainMemory(domain("<memory unit='EiB'>99999</memory>"))).to.throw(
      /too large/,
    );
  });
});
