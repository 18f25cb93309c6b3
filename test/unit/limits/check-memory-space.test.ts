// The memory-space check end to end: RAM from the domain XML, free space from the folder.
import { expect } from "chai";
import { mkdtempSync, rmSync, statfsSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

import { checkMemorySpace } from "../../../src/limits/check-memory-space.ts";

const MiB = 2 ** 20;
const xml =
  "<domain><memory unit='MiB'>1024</memory><currentMemory unit='MiB'>512</currentMemory></domain>";

describe("checkMemorySpace", () => {
  it("counts the balloon's current RAM against the free space", async () => {
    const fixed = (bytes: number) => async () => bytes;
    const enough = await checkMemorySpace({
      domainXml: xml,
      folder: "/m",
      reserveBytes: 100 * MiB,
      freeBytes: fixed(612 * MiB),
    });
    expect(enough).to.deep.equal({ allowed: true, ramBytes: 512 * MiB });
    const short = await checkMemorySpace({
      domainXml: xml,
      folder: "/m",
      reserveBytes: 100 * MiB,
      freeBytes: fixed(612 * MiB - 1),
    });
    expect(short).to.include({ allowed: false, reason: "InsufficientSpace", ramBytes: 512 * MiB });
  });

  it("measures a real folder: refused when the reserve alone exceeds what the disk has", async () => {
    const dir = mkdtempSync(join(tmpdir(), "vmsnap-space-"));
    try {
      const s = statfsSync(dir);
      const total = s.blocks * s.bsize;
      expect(
        (await checkMemorySpace({ domainXml: xml, folder: dir, reserveBytes: total })).allowed,
      ).to.equal(false);
      expect(
        (await checkMemorySpace({ domainXml: xml, folder: dir, reserveBytes: 0 })).allowed,
      ).to.equal(s.bavail * s.bsize > 600 * MiB);
    } finally {
      rmSync(dir, { recursive: true });
    }
  });
});
