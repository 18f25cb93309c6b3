// What the RBD backend decides for a request, before it runs anything.
import { expect } from "chai";
import type { Disk } from "../../../src/hypervisor/disk.ts";
import { isStorageError } from "../../../src/storage/rbd/errors.ts";
import { planRbdSnapshot } from "../../../src/storage/rbd/plan.ts";

const rbd = (target: string, pool: string, image: string, namespace?: string): Disk => ({
  target,
  device: "disk",
  type: "network",
  readonly: false,
  shareable: false,
  plan: { backend: "rbd", rbd: { pool, image, monitors: [], ...(namespace ? { namespace } : {}) } },
});
const file = (target: string): Disk => ({
  target,
  device: "disk",
  type: "file",
  readonly: false,
  shareable: false,
  plan: { backend: "libvirt-file", file: { path: "/x.qcow2" } },
});

const UUID = "6695eb01-f6a4-8304-79aa-97f2502e193f";
const GROUP = `vmsnap-${UUID}`;

describe("RBD snapshot planning", () => {
  it("no disks: nothing to do", () => {
    expect(planRbdSnapshot({ domain: "d", name: "s", disks: [] })).to.deep.equal({ kind: "none" });
  });

  it("one disk: an image snapshot", () => {
    const plan = planRbdSnapshot({ domain: "d", name: "s", disks: [rbd("vda", "rbd", "a")] });
    expect(plan).to.include({ kind: "image" });
    expect(plan.kind === "image" && plan.image).to.deep.equal({ pool: "rbd", image: "a" });
  });

  it("two disks on one image (shareable twice): still one image snapshot", () => {
    const plan = planRbdSnapshot({
      domain: "d",
      name: "s",
      disks: [rbd("vda", "rbd", "a"), rbd("vdb", "rbd", "a")],
    });
    expect(plan.kind).to.equal("image");
    expect(plan.kind === "image" && plan.disks.map((d) => d.target)).to.deep.equal(["vda", "vdb"]);
  });

  it("several disks: one group snapshot of the domain's group (by UUID), in the pool of the first target", () => {
    const plan = planRbdSnapshot({
      domain: "web",
      domainUUID: UUID,
      name: "s",
      disks: [rbd("vdb", "fast", "data"), rbd("vda", "rbd", "boot")],
    });
    expect(plan.kind).to.equal("group");
    if (plan.kind !== "group") return;
    expect(plan.group).to.deep.equal({ pool: "rbd", group: GROUP });
    expect(plan.legacyGroup, "the name-keyed group of older releases").to.deep.equal({
      pool: "rbd",
      group: "vmsnap-web",
    });
    expect(plan.images).to.deep.equal([
      { pool: "fast", image: "data" },
      { pool: "rbd", image: "boot" },
    ]);
  });

  it("several disks in one namespace: the group is in that namespace", () => {
    const plan = planRbdSnapshot({
      domain: "web",
      domainUUID: UUID,
      name: "s",
      disks: [rbd("vda", "rbd", "a", "t1"), rbd("vdb", "rbd", "b", "t1")],
    });
    expect(plan.kind === "group" && plan.group).to.deep.equal({
      pool: "rbd",
      namespace: "t1",
      group: GROUP,
    });
  });

  it("several disks without the domain's UUID: refused, there is no safe group to use", () => {
    expect(() =>
      planRbdSnapshot({
        domain: "web",
        name: "s",
        disks: [rbd("vda", "rbd", "a"), rbd("vdb", "rbd", "b")],
      }),
    )
      .to.throw(/UUID/)
      .that.satisfies((e: unknown) => isStorageError(e, "InvalidName"));
  });

  it("disks in different namespaces are refused (a group cannot span them)", () => {
    expect(() =>
      planRbdSnapshot({
        domain: "web",
        name: "s",
        disks: [rbd("vda", "rbd", "a"), rbd("vdb", "rbd", "b", "t1")],
      }),
    )
      .to.throw(/namespaces/)
      .that.satisfies((e: unknown) => isStorageError(e, "UnsupportedLayout"));
  });

  it("benchmark mode plans one image snapshot per image", () => {
    const plan = planRbdSnapshot(
      { domain: "d", name: "s", disks: [rbd("vda", "rbd", "a"), rbd("vdb", "rbd", "b")] },
      { sequentialImageSnapshots: true },
    );
    expect(plan.kind).to.equal("sequential");
  });

  it("a non-RBD disk is refused rather than skipped", () => {
    expect(() =>
      planRbdSnapshot({ domain: "d", name: "s", disks: [rbd("vda", "rbd", "a"), file("vdb")] }),
    )
      .to.throw(/vdb/)
      .that.satisfies((e: unknown) => isStorageError(e, "UnsupportedLayout"));
  });

  it("an unsafe snapshot, pool, namespace or image name is InvalidName", () => {
    const bad = [
      { domain: "d", name: "s;x", disks: [rbd("vda", "rbd", "a")] },
      { domain: "d", name: "s", disks: [rbd("vda", "r b", "a")] },
      { domain: "d", name: "s", disks: [rbd("vda", "rbd", "a", "n@s")] },
      { domain: "d", name: "s", disks: [rbd("vda", "rbd", "a/b")] },
    ];
    for (const request of bad) {
      expect(() => planRbdSnapshot(request))
        .to.throw()
        .that.satisfies((e: unknown) => isStorageError(e, "InvalidName"));
    }
  });

  it("an unsafe domain name does not matter to the group, nor to the old group it may leave", () => {
    const plan = planRbdSnapshot({
      domain: "web; rm -rf /",
      domainUUID: UUID,
      name: "s",
      disks: [rbd("vda", "rbd", "a"), rbd("vdb", "rbd", "b")],
    });
    expect(plan.kind === "group" && plan.group.group).to.equal(GROUP);
    expect(plan.kind === "group" && plan.legacyGroup.group).to.match(
      /^vmsnap-web__rm_-rf__-[0-9a-f]{10}$/,
    );
  });
});
