// The free-space check for memory snapshots: refused, with InsufficientSpace and the numbers,
// when the memory folder cannot take the guest's RAM and still keep the reserve.
import { expect } from "chai";
import { mkdtempSync, rmSync, statfsSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

import { freeBytes } from "../../../src/limits/free-space.ts";
import { decideMemorySpace, formatBytes, parseByteSize } from "../../../src/limits/memory-space.ts";

const GiB = 2 ** 30;
const folder = "/var/lib/vmsnap/memory";

describe("the memory folder's free space", () => {
  it("allows a snapshot when free space covers RAM plus the reserve, exactly enough included", () => {
    expect(
      decideMemorySpace({ freeBytes: 3 * GiB, ramBytes: 2 * GiB, reserveBytes: GiB, folder }),
    ).to.deep.equal({
      allowed: true,
    });
  });

  it("refuses InsufficientSpace one byte short, naming the folder and the numbers", () => {
    const d = decideMemorySpace({
      freeBytes: 3 * GiB - 1,
      ramBytes: 2 * GiB,
      reserveBytes: GiB,
      folder,
    });
    expect(d).to.include({ allowed: false, reason: "InsufficientSpace" });
    expect(!d.allowed && d.message).to.equal(
      "not enough room for the memory image: /var/lib/vmsnap/memory has 3 GiB free, " +
        "the guest's RAM needs 2 GiB + 1 GiB reserve",
    );
  });

  it("counts the RAM of memory snapshots already admitted on the host", () => {
    const input = { freeBytes: 5 * GiB, ramBytes: 2 * GiB, reserveBytes: GiB, folder };
    expect(decideMemorySpace(input).allowed).to.equal(true);
    const d = decideMemorySpace({ ...input, committedBytes: 2.5 * GiB });
    expect(d.allowed).to.equal(false);
    expect(!d.allowed && d.message).to.include("+ 2.5 GiB for memory snapshots in flight");
  });

  it("formats sizes for people", () => {
    expect([0, 1023, 1536 * 2 ** 20, 97.3 * 2 ** 20].map(formatBytes)).to.deep.equal([
      "0 B",
      "1023 B",
      "1.5 GiB",
      "97.3 MiB",
    ]);
  });

  it("parses the reserve flag's sizes, refusing what is not one", () => {
    expect(parseByteSize("1Gi")).to.equal(GiB);
    expect(parseByteSize("512Mi")).to.equal(512 * 2 ** 20);
    expect(parseByteSize("2G")).to.equal(2e9);
    expect(parseByteSize("4096")).to.equal(4096);
    expect(() => parseByteSize("1GB")).to.throw(/not a size like 1Gi/);
    expect(() => parseByteSize("-1Gi")).to.throw(/not a size/);
  });

  it("measures a real folder's free space as statfs bavail × bsize", async () => {
    const dir = mkdtempSync(join(tmpdir(), "vmsnap-free-"));
    try {
      const s = statfsSync(dir);
      const measured = await freeBytes(dir);
      // Other processes write meanwhile: within 64 MiB of our own statfs.
      expect(Math.abs(measured - s.bavail * s.bsize)).to.be.below(64 * 2 ** 20);
      expect(measured).to.be.at.most(s.bfree * s.bsize + 64 * 2 ** 20);
    } finally {
      rmSync(dir, { recursive: true });
    }
  });
});
