// saveMemory/removeMemory through the real addon on libvirt's test driver, which accepts an
// external memory snapshot only when every disk says snapshot='no' and writes no file
// (docs/libvirt-facts.md):
// so these tests check the XML we send is acceptable, the bookkeeping, and idempotency.
import { expect } from "chai";
import { existsSync, mkdtempSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

import type { Hypervisor } from "../../../src/hypervisor/connection.ts";
import { HypervisorError } from "../../../src/hypervisor/errors.ts";
import {
  memorySnapshotName,
  removeMemory,
  saveMemory,
} from "../../../src/hypervisor/memory-snapshot.ts";
import { openTestHost, RUNNING } from "./test-host.ts";

describe("memory snapshot on the libvirt test driver", function () {
  let hv: Hypervisor;
  let dir: string;

  beforeEach(async () => {
    hv = await openTestHost({ callTimeoutMs: 5000 });
    dir = mkdtempSync(join(tmpdir(), "vmsnap-mem-"));
  });
  afterEach(async () => {
    await hv.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it("creates `<name>.memory` with every disk skipped, even when the caller names none", async () => {
    const file = join(dir, "vmsnap-a.mem");
    // diskTargets empty: the domain's own disks (vda rbd, vdb file) must still be snapshot='no',
    // or the test driver refuses the external memory snapshot.
    const image = await saveMemory(hv, {
      domain: RUNNING,
      name: "vmsnap-a",
      file,
      diskTargets: [],
      timeoutMs: 5000,
    });
    expect(image).to.deep.equal({ file, bytes: 0 }); // the test driver writes no file
    expect(await hv.listSnapshots(RUNNING)).to.deep.equal([memorySnapshotName("vmsnap-a")]);
    const xml = await hv.snapshotXml(RUNNING, "vmsnap-a.memory");
    expect(xml).to.match(/<memory snapshot='external' file='[^']*vmsnap-a\.mem'\/>/);
    expect(xml).to.match(/<disk name='vda' snapshot='no'\/>/);
    expect(xml).to.match(/<disk name='vdb' snapshot='no'\/>/);
  });

  it("is a no-op when retried, and refuses a retry naming another file", async () => {
    const request = {
      domain: RUNNING,
      name: "vmsnap-b",
      file: join(dir, "b.mem"),
      diskTargets: ["vda", "vdb"],
      timeoutMs: 5000,
    };
    await saveMemory(hv, request);
    expect(await saveMemory(hv, request)).to.deep.equal({ file: request.file, bytes: 0 });
    expect(await hv.listSnapshots(RUNNING)).to.have.length(1);
    const err = await saveMemory(hv, { ...request, file: join(dir, "other.mem") }).catch(
      (e: unknown) => e,
    );
    expect(err).to.be.instanceOf(HypervisorError).and.include({ reason: "InvalidArgument" });
  });

  it("replaces a stale file that has no snapshot, and removes it with the metadata", async () => {
    const file = join(dir, "c.mem");
    writeFileSync(file, "stale image of an earlier attempt", { mode: 0o644 });
    await saveMemory(hv, {
      domain: RUNNING,
      name: "vmsnap-c",
      file,
      diskTargets: [],
      timeoutMs: 5000,
    });
    // The test driver writes nothing: the stale file must be gone, not reported as the image.
    expect(existsSync(file)).to.equal(false);

    writeFileSync(file, "pretend image");
    await removeMemory(hv, { domain: RUNNING, name: "vmsnap-c", file });
    expect(await hv.listSnapshots(RUNNING)).to.deep.equal([]);
    expect(existsSync(file)).to.equal(false);
  });

  it("makes an existing image owner-only and reports its size on a retried save", async () => {
    const file = join(dir, "d.mem");
    const request = { domain: RUNNING, name: "vmsnap-d", file, diskTargets: [], timeoutMs: 5000 };
    await saveMemory(hv, request);
    writeFileSync(file, Buffer.alloc(4096), { mode: 0o644 }); // as a driver with a umask might
    expect(await saveMemory(hv, request)).to.deep.equal({ file, bytes: 4096 });
    expect(statSync(file).mode & 0o777).to.equal(0o600);
  });

  it("removes idempotently: a missing snapshot, file or domain is success", async () => {
    const file = join(dir, "e.mem");
    await removeMemory(hv, { domain: RUNNING, name: "vmsnap-e", file });
    await saveMemory(hv, {
      domain: RUNNING,
      name: "vmsnap-e",
      file,
      diskTargets: [],
      timeoutMs: 5000,
    });
    await removeMemory(hv, { domain: RUNNING, name: "vmsnap-e", file });
    await removeMemory(hv, { domain: RUNNING, name: "vmsnap-e", file });
    await removeMemory(hv, { domain: "no-such-domain", name: "vmsnap-e", file });
    expect(await hv.listSnapshots(RUNNING)).to.deep.equal([]);
  });

  it("refuses unsafe names and paths before calling libvirt", async () => {
    const bad = [
      { name: "../x", file: join(dir, "x.mem") },
      { name: "has.dot", file: join(dir, "x.mem") },
      { name: "ok", file: "relative.mem" },
      { name: "ok", file: `${dir}/a\nb.mem` },
    ];
    for (const { name, file } of bad) {
      const err = await saveMemory(hv, {
        domain: RUNNING,
        name,
        file,
        diskTargets: [],
        timeoutMs: 5000,
      }).catch((e: unknown) => e);
      expect(err, `${name} ${file}`).to.be.instanceOf(HypervisorError).and.include({
        reason: "InvalidArgument",
      });
    }
    expect(await hv.listSnapshots(RUNNING)).to.deep.equal([]);
  });
});
