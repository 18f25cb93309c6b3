// File-disk restore with real qemu-img on real qcow2 files, in the layout the libvirt backend
// leaves after an external disk-only snapshot: the snapshot's content in the backing file, the
// writes made since in its overlay. In place: a new empty overlay on the backing file, which reads
// as the snapshot and leaves the old overlay (later snapshots' data) alone. New domain: a full copy
// that no longer depends on the backing file the source domain will commit into.
import { execFileSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { expect } from "chai";
import { HypervisorError } from "../../../src/hypervisor/errors.ts";
import {
  copyFileDisk,
  createRevertOverlay,
  imageInfo,
  removeRestoredFile,
  revertOverlayPath,
} from "../../../src/storage/libvirt-file/restore.ts";

const MiB = 1024 * 1024;

describe("file-disk restore (real qemu-img)", function () {
  this.timeout(60_000);
  let dir: string;
  let backing: string;
  let snapshotOverlay: string;

  /** The first bytes the guest would read through the image's chain. */
  function readAt0(image: string): string {
    const out = join(dir, `read-${Math.random().toString(16).slice(2)}.raw`);
    execFileSync("qemu-img", ["convert", "-U", "-O", "raw", image, out]);
    const text = readFileSync(out).subarray(0, 32).toString("latin1").replace(/\0+$/, "");
    rmSync(out);
    return text;
  }

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), "vmsnap-filerestore-"));
    backing = join(dir, "vda.qcow2");
    snapshotOverlay = join(dir, "vda.qcow2.vmsnap-1.qcow2");
    execFileSync("qemu-img", ["create", "-q", "-f", "qcow2", backing, `${4 * MiB}`]);
    execFileSync("qemu-io", ["-f", "qcow2", "-c", "write -P 0x41 0 4096", backing], {
      stdio: "ignore",
    });
    // What libvirt's external snapshot does: the disk switches to an overlay on the old file.
    execFileSync("qemu-img", [
      "create",
      "-q",
      "-f",
      "qcow2",
      "-b",
      backing,
      "-F",
      "qcow2",
      snapshotOverlay,
    ]);
    execFileSync("qemu-io", ["-f", "qcow2", "-c", "write -P 0x42 0 4096", snapshotOverlay], {
      stdio: "ignore",
    });
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it("names the in-place overlay after the restore, next to the backing file", () => {
    expect(revertOverlayPath("/vms/web.qcow2", "vmrestore-4b9c")).to.equal(
      "/vms/web.qcow2.vmrestore-4b9c.qcow2",
    );
    expect(() => revertOverlayPath("vms/web.qcow2", "vmrestore-1")).to.throw(/absolute/);
  });

  it("in place: the new overlay reads as the snapshot; the snapshot's own overlay keeps the later writes", async () => {
    expect(readAt0(snapshotOverlay)).to.equal("B".repeat(32));
    const overlay = revertOverlayPath(backing, "vmrestore-1");
    expect(await createRevertOverlay(backing, overlay)).to.equal(true);
    expect(readAt0(overlay)).to.equal("A".repeat(32));
    expect(readAt0(snapshotOverlay)).to.equal("B".repeat(32));
    const info = await imageInfo(overlay);
    expect(info).to.deep.include({ format: "qcow2", backingFile: backing, virtualSize: 4 * MiB });
  });

  it("in place, retried: keeps the overlay (and what a restored guest wrote to it)", async () => {
    const overlay = revertOverlayPath(backing, "vmrestore-1");
    await createRevertOverlay(backing, overlay);
    execFileSync("qemu-io", ["-f", "qcow2", "-c", "write -P 0x43 0 4096", overlay], {
      stdio: "ignore",
    });
    expect(await createRevertOverlay(backing, overlay)).to.equal(false);
    expect(readAt0(overlay)).to.equal("C".repeat(32));
  });

  it("in place: refuses to reuse a file at the overlay's path that is not an overlay on the backing file", async () => {
    const overlay = revertOverlayPath(backing, "vmrestore-1");
    execFileSync("qemu-img", ["create", "-q", "-f", "qcow2", overlay, `${MiB}`]);
    const err = await createRevertOverlay(backing, overlay).catch((e: unknown) => e);
    expect(err).to.be.instanceOf(HypervisorError);
    expect((err as HypervisorError).reason).to.equal("InvalidArgument");
  });

  it("new domain: a self-contained copy of the snapshot that survives a commit into the backing file", async () => {
    const copy = join(dir, "copy.qcow2");
    expect(await copyFileDisk(backing, copy)).to.equal(true);
    expect((await imageInfo(copy)).backingFile).to.equal(undefined);
    // The source domain's snapshot deletion: block commit of its overlay into the backing file.
    execFileSync("qemu-img", ["commit", "-q", snapshotOverlay]);
    expect(readAt0(backing)).to.equal("B".repeat(32));
    expect(readAt0(copy)).to.equal("A".repeat(32));
    expect(await copyFileDisk(backing, copy)).to.equal(false);
    expect(existsSync(`${copy}.partial`)).to.equal(false);
  });

  it("removes a restored file and a partial leftover; removing again succeeds", async () => {
    const copy = join(dir, "copy.qcow2");
    await copyFileDisk(backing, copy);
    writeFileSync(`${copy}.partial`, "left over");
    await removeRestoredFile(copy);
    await removeRestoredFile(copy);
    expect(existsSync(copy) || existsSync(`${copy}.partial`)).to.equal(false);
  });
});
