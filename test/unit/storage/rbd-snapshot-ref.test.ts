// Reading an RBD disk's snapshot back from a VMSnapshot's status: an image snapshot names the
// disk's own image before `@`, a group snapshot names the domain's group; anything else the
// backend never writes is refused before a command line is built from it.
import { expect } from "chai";
import { isStorageError } from "../../../src/storage/rbd/errors.ts";
import { parseImagePath, snapshotRefOf } from "../../../src/storage/rbd/snapshot-ref.ts";

const handle = (source: string, snapshot: string) =>
  ({ target: "vdb", backend: "rbd", source, snapshot }) as const;

describe("RBD snapshot handles from status", () => {
  it("reads an image snapshot: the part before @ is the disk's own image", () => {
    expect(snapshotRefOf(handle("vms/web", "vms/web@vmsnap-1"))).to.deep.equal({
      kind: "image",
      target: "vdb",
      image: { pool: "vms", image: "web" },
      name: "vmsnap-1",
    });
  });

  it("reads a group snapshot, also in a namespace and in another pool than the image", () => {
    expect(snapshotRefOf(handle("data/t1/web", "vms/t1/vmsnap-web@vmsnap-1"))).to.deep.equal({
      kind: "group",
      target: "vdb",
      image: { pool: "data", namespace: "t1", image: "web" },
      group: { pool: "vms", namespace: "t1", group: "vmsnap-web" },
      name: "vmsnap-1",
    });
  });

  it("refuses a file handle, a handle without @, and unsafe names", () => {
    const bad = [
      { target: "vda", backend: "libvirt-file", source: "/v/a.qcow2", snapshot: "web@s" },
      handle("vms/web", "vms/web"),
      handle("vms/web", "vms/web@-rf"),
      handle("vms/a/b/c", "vms/web@s"),
    ] as const;
    for (const h of bad) {
      const err = (() => {
        try {
          snapshotRefOf(h);
        } catch (e) {
          return e;
        }
      })();
      expect(isStorageError(err, "InvalidName"), JSON.stringify(h)).to.equal(true);
    }
    expect(() => parseImagePath("pool", "x")).to.throw(/pool\[\/namespace\]\/name/);
  });
});
