import { expect } from "chai";
import { parseThawRecord, thawRecordXml } from "../../../src/hypervisor/thaw-record.ts";

describe("the thaw record on a domain", () => {
  const record = {
    id: "0b6f2c1e-7d3a-4f55-9a51-1c2d3e4f5a6b",
    at: 1_764_750_000_123,
    filesystems: 2,
    by: "guard" as const,
  };

  it("reads back what it writes", () => {
    expect(parseThawRecord(thawRecordXml(record))).to.deep.equal(record);
  });

  it("reads the element as libvirt returns it, with a namespace prefix and declaration", () => {
    const xml = `<vmsnap-thaw:thaw xmlns:vmsnap-thaw="https://vmsnap.io/xmlns/thaw/v1" id="${record.id}" at="${record.at}" filesystems="2" by="guard"/>`;
    expect(parseThawRecord(xml)).to.deep.equal(record);
  });

  it("is nothing unless every field is there and well-formed", () => {
    for (const xml of [
      "<thaw/>",
      `<thaw id="${record.id}" filesystems="2"/>`,
      `<thaw id="${record.id}" at="soon" filesystems="2"/>`,
      `<thaw id="${record.id}" at="1.5" filesystems="2"/>`,
      `<thaw id="a b" at="1" filesystems="2"/>`,
      `<thaw id="${record.id}" at="1" filesystems="-1" by="guard"/>`,
      `<thaw id="${record.id}" at="1" filesystems="1" by="someone"/>`,
      `<other id="${record.id}" at="1" filesystems="2"/>`,
      "<thaw",
    ])
      expect(parseThawRecord(xml), xml).to.equal(undefined);
  });

  it("refuses to write an id that is not a UID, or a time that is not whole", () => {
    expect(() => thawRecordXml({ ...record, id: '"/><x' })).to.throw(/not an attempt id/);
    expect(() => thawRecordXml({ ...record, at: 1.5 })).to.throw(/whole numbers/);
  });
});
