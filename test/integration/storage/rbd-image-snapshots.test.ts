// One RBD disk → one image snapshot, against the real cluster: created, listed, removed,
// retried, and rolled back with the data it had.
import { expect } from "chai";
import { RbdBackend } from "../../../src/storage/rbd/backend.ts";
import {
  createImageSnapshot,
  listImageSnapshots,
  removeImageSnapshot,
  rollbackImageSnapshot,
} from "../../../src/storage/rbd/image-snapshots.ts";
import { createRbdRunner, type RbdRunner } from "../../../src/storage/rbd/runner.ts";
import { getCephCluster, type CephCluster } from "../../support/ceph/cluster.ts";
import {
  checksum,
  createImage,
  createImageWithData,
  overwrite,
  purgeImage,
  rbdConfigFor,
  rbdDisk,
  uniqueName,
} from "../../support/ceph/fixtures.ts";

describe("RBD image snapshots (real Ceph)", function () {
  this.timeout(120_000);
  let cluster: CephCluster;
  let runner: RbdRunner;
  let backend: RbdBackend;
  const images: string[] = [];

  before(async () => {
    cluster = await getCephCluster();
    runner = createRbdRunner(rbdConfigFor(cluster));
    backend = new RbdBackend({ config: rbdConfigFor(cluster) });
  });
  after(async () => {
    for (const spec of images) await purgeImage(cluster, spec);
  });

  async function newImage(
    withData = false,
  ): Promise<{ pool: string; image: string; spec: string }> {
    const image = uniqueName("img");
    const spec = `${cluster.pool}/${image}`;
    images.push(spec);
    if (withData) await createImageWithData(cluster, spec);
    else await createImage(cluster, spec);
    return { pool: cluster.pool, image, spec };
  }

  it("creates, lists and removes a snapshot; create and remove again are no-ops", async () => {
    const { pool, image } = await newImage();
    expect(await createImageSnapshot(runner, { pool, image }, "s1")).to.equal(true);
    expect(await createImageSnapshot(runner, { pool, image }, "s1")).to.equal(false);
    const listed = await listImageSnapshots(runner, { pool, image });
    expect(listed.map((s) => s.name)).to.deep.equal(["s1"]);
    expect(listed[0]!.protected).to.equal(false);
    await removeImageSnapshot(runner, { pool, image }, "s1");
    await removeImageSnapshot(runner, { pool, image }, "s1");
    expect(await listImageSnapshots(runner, { pool, image })).to.deep.equal([]);
  });

  it("backend: one disk gets an image snapshot with a pool/image@name handle; retries change nothing", async () => {
    const { pool, image, spec } = await newImage();
    const request = {
      domain: uniqueName("dom"),
      name: "vmsnap-uid-1",
      disks: [rbdDisk("vda", pool, image)],
    };
    const handles = await backend.create(request);
    expect(handles).to.deep.equal([
      { target: "vda", backend: "rbd", source: spec, snapshot: `${spec}@vmsnap-uid-1` },
    ]);
    expect(await backend.create(request)).to.deep.equal(handles);
    expect((await listImageSnapshots(runner, { pool, image })).map((s) => s.name)).to.deep.equal([
      "vmsnap-uid-1",
    ]);
    await backend.remove(request);
    await backend.remove(request);
    expect(await listImageSnapshots(runner, { pool, image })).to.deep.equal([]);
  });

  it("rollback restores the data written before the snapshot and overwritten after it", async () => {
    const { pool, image, spec } = await newImage(true);
    const before = await checksum(cluster, spec);
    const request = {
      domain: uniqueName("dom"),
      name: "before-overwrite",
      disks: [rbdDisk("vda", pool, image)],
    };
    await backend.create(request);
    await overwrite(cluster, spec);
    const overwritten = await checksum(cluster, spec);
    expect(overwritten, "the overwrite changed the image").to.not.equal(before);
    expect(
      await checksum(cluster, `${spec}@before-overwrite`),
      "the snapshot kept the old data",
    ).to.equal(before);
    await backend.rollback(request);
    expect(await checksum(cluster, spec)).to.equal(before);
  });

  it("rollback via the image API to an older of two snapshots", async () => {
    const { pool, image, spec } = await newImage(true);
    const first = await checksum(cluster, spec);
    await createImageSnapshot(runner, { pool, image }, "one");
    await overwrite(cluster, spec);
    const second = await checksum(cluster, spec);
    await createImageSnapshot(runner, { pool, image }, "two");
    await overwrite(cluster, spec);
    await rollbackImageSnapshot(runner, { pool, image }, "one");
    expect(await checksum(cluster, spec)).to.equal(first);
    await rollbackImageSnapshot(runner, { pool, image }, "two");
    expect(await checksum(cluster, spec)).to.equal(second);
  });
});
