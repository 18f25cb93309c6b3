// Guest disks: an ext4 filesystem made on the host (the guest has no mkfs.ext4), either as a
// qcow2 file for a libvirt file disk or as a raw image to copy into an RBD image.
import { execFile } from "node:child_process";
import { closeSync, ftruncateSync, openSync, rmSync } from "node:fs";
import { promisify } from "node:util";

const run = promisify(execFile);

/** Writes a raw image of `sizeMiB` holding an empty ext4 filesystem. */
export async function createExt4Raw(path: string, sizeMiB = 64, label = "vmsnap"): Promise<void> {
  const fd = openSync(path, "w");
  try {
    ftruncateSync(fd, sizeMiB * 1024 * 1024); // sparse: costs no space until written
  } finally {
    closeSync(fd);
  }
  // -F: it is a file, not a block device; -q: no progress on the test output.
  await run("mkfs.ext4", ["-q", "-F", "-L", label, path], { timeout: 60_000 });
}

/** Writes a qcow2 image at `path` holding an empty ext4 filesystem of `sizeMiB`. */
export async function createExt4Qcow2(path: string, sizeMiB = 64, label = "vmsnap"): Promise<void> {
  const raw = `${path}.raw`;
  try {
    await createExt4Raw(raw, sizeMiB, label);
    await run("qemu-img", ["convert", "-q", "-f", "raw", "-O", "qcow2", raw, path], {
      timeout: 60_000,
    });
  } finally {
    rmSync(raw, { force: true });
  }
}
