// libvirt's save-image header as vmsnap writes it in front of a background snapshot's stream:
// the same layout, lengths and magic libvirt 9.0 wrote for `virsh save` of the test guest on this
// machine (numbers below), and partial until marked complete.
import { expect } from "chai";

import {
  HEADER_BYTES,
  XML_PADDING_BYTES,
  completeMagic,
  parseSaveImageHeader,
  partialSaveImageHeader,
} from "../../../src/hypervisor/save-image-header.ts";

// `virsh save` of a 512 MiB test guest (libvirt 9.0.0): its first 36 bytes were
// "LibvirtQemudSave" 02000000 3f090100 01000000 00000000 53080000, i.e. version 2,
// data_len 67903, was_running 1, raw, cookieOffset 2131, for a 2130-byte XML and a 235-byte
// cookie; the migration stream ("QEVM") started at byte 67995 = 92 + 67903.
const LIBVIRT_SAVE = { xmlChars: 2130, cookieChars: 235, dataLen: 67903, streamAt: 67995 };

const xmlOf = (chars: number) => `<domain>${"x".repeat(chars - 17)}</domain>`;

describe("save-image header (libvirt 9.0 layout)", () => {
  it("lays out header, XML, cookie and padding exactly as libvirt's own save did", () => {
    const xml = xmlOf(LIBVIRT_SAVE.xmlChars);
    const cookie = `<cookie>${"c".repeat(LIBVIRT_SAVE.cookieChars - 17)}</cookie>`;
    const bytes = partialSaveImageHeader({ xml, cookie, wasRunning: true });

    expect(bytes.length).to.equal(LIBVIRT_SAVE.streamAt);
    expect(bytes.readUInt32LE(16)).to.equal(2);
    expect(bytes.readUInt32LE(20)).to.equal(LIBVIRT_SAVE.dataLen);
    expect(bytes.readUInt32LE(24)).to.equal(1);
    expect(bytes.readUInt32LE(28)).to.equal(0);
    expect(bytes.readUInt32LE(32)).to.equal(LIBVIRT_SAVE.xmlChars + 1);
    expect(bytes.subarray(36, HEADER_BYTES).every((b) => b === 0)).to.equal(true);
    expect(bytes.toString("utf8", HEADER_BYTES, HEADER_BYTES + xml.length)).to.equal(xml);
  });

  it("starts partial, so libvirt refuses the image until the stream is complete", () => {
    const bytes = partialSaveImageHeader({ xml: "<domain/>", wasRunning: true });
    expect(bytes.toString("latin1", 0, 16)).to.equal("LibvirtQemudPart");
    expect(parseSaveImageHeader(bytes).complete).to.equal(false);

    completeMagic().copy(bytes, 0);
    expect(bytes.toString("latin1", 0, 16)).to.equal("LibvirtQemudSave");
    expect(parseSaveImageHeader(bytes).complete).to.equal(true);
  });

  it("reads back the XML, the cookie, was_running and where the stream starts", () => {
    const xml = "<domain type='qemu'><name>a&amp;b ü</name></domain>";
    const bytes = partialSaveImageHeader({ xml, cookie: "<cookie/>", wasRunning: false });
    const header = parseSaveImageHeader(bytes);
    expect(header).to.include({ version: 2, wasRunning: false, compressed: 0, xml });
    expect(header.cookie).to.equal("<cookie/>");
    expect(header.streamOffset).to.equal(bytes.length);
    expect(header.streamOffset).to.equal(
      HEADER_BYTES + Buffer.byteLength(xml) + 1 + "<cookie/>".length + 1 + XML_PADDING_BYTES,
    );
  });

  it("without a cookie, leaves cookieOffset 0 and the XML fills the data up to the padding", () => {
    const header = parseSaveImageHeader(
      partialSaveImageHeader({ xml: "<domain/>", wasRunning: true }),
    );
    expect(header.cookie).to.equal(undefined);
    expect(header.xml).to.equal("<domain/>");
  });

  it("refuses an XML holding a NUL, which would cut it short on restore", () => {
    expect(() => partialSaveImageHeader({ xml: "<domain>\0</domain>", wasRunning: true })).to.throw(
      /must not contain NUL/,
    );
  });

  it("refuses bytes that are not a save image", () => {
    expect(() => parseSaveImageHeader(Buffer.alloc(200))).to.throw(/bad magic/);
    expect(() => parseSaveImageHeader(Buffer.alloc(10))).to.throw(/shorter/);
  });
});
