// Several RBD disks of one domain → one group snapshot of the domain's group, against the real
// cluster: created, listed, retried, rolled back, removed together with the group; membership
// follows the domain's disks; an image of another group and a split across namespaces are
// refused with a clear error.
import { expect } from "chai";
import { RbdBackend } from "../../../src/storage/rbd/backend.ts";
import { isStorageError } from "../../../src/storage/rbd/errors.ts";
import { listGroupSnapshots } from "../../../src/storage/rbd/group-snapshots.ts";
import {
  addImageToGroup,
  ensureGroup,
  groupExists,
  listGroupImages,
} from "../../../src/storage/rbd/groups.ts";
import { listImageSnapshots } from "../../../src/storage/rbd/image-snapshots.ts";
import { groupNameForDomain } from "../../../src/storage/rbd/names.ts";
import { createRbdRunner, type RbdRunner } from "../../../src/storage/rbd/runner.ts";
import type { SnapshotRequest } from "../../../src/storage/backend.ts";
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

describe("RBD group snapshots (real Ceph)", function () {
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

  async function newImages(
    count: number,
    pool = cluster.pool,
    withData = false,
  ): Promise<string[]> {
    const names: string[] = [];
    for (let i = 0; i < count; i++) {
      const image = uniqueName("gimg");
      images.push(`${pool}/${image}`);
      if (withData) await createImageWithData(cluster, `${pool}/${image}`);
      else await createImage(cluster, `${pool}/${image}`);
      names.push(image);
    }
    return names;
  }

  function requestFor(
    domain: string,
    name: string,
    imageNames: string[],
    pool = cluster.pool,
  ): SnapshotRequest {
    return {
      domain,
      name,
      disks: imageNames.map((image, i) => rbdDisk(`vd${"abcdefgh"[i]}`, pool, image)),
    };
  }

  it("snapshots three disks as one group snapshot with pool/group@name handles; retries are no-ops", async () => {
    const domain = uniqueName("web");
    const names = await newImages(3);
    const request = requestFor(domain, "vmsnap-uid-g1", names);
    const group = { pool: cluster.pool, group: groupNameForDomain(domain) };
    const handles = await backend.create(request);
    expect(handles.map((h) => h.snapshot)).to.deep.equal(
      names.map(() => `${cluster.pool}/${group.group}@vmsnap-uid-g1`),
    );
    expect(handles.map((h) => h.source)).to.deep.equal(names.map((n) => `${cluster.pool}/${n}`));
    expect(handles.map((h) => h.target)).to.deep.equal(["vda", "vdb", "vdc"]);

    expect(await backend.create(request), "retry").to.deep.equal(handles);
    expect(await listGroupSnapshots(runner, group)).to.deep.equal([
      { name: "vmsnap-uid-g1", state: "ok" },
    ]);
    expect((await listGroupImages(runner, group)).map((i) => i.image).sort()).to.deep.equal(
      [...names].sort(),
    );
    // The member snapshots are hidden from a plain `snap ls`: users' image snapshots stay theirs.
    expect(
      await listImageSnapshots(runner, { pool: cluster.pool, image: names[0]! }),
    ).to.deep.equal([]);

    const second = requestFor(domain, "vmsnap-uid-g2", names);
    await backend.create(second);
    expect((await listGroupSnapshots(runner, group)).map((s) => s.name)).to.deep.equal([
      "vmsnap-uid-g1",
      "vmsnap-uid-g2",
    ]);

    await backend.remove(request);
    await backend.remove(request);
    expect((await listGroupSnapshots(runner, group)).map((s) => s.name)).to.deep.equal([
      "vmsnap-uid-g2",
    ]);
    expect(await groupExists(runner, group), "group kept while a snapshot needs it").to.equal(true);
    await backend.remove(second);
    expect(await groupExists(runner, group), "group removed with its last snapshot").to.equal(
      false,
    );
    const info = await cluster.rbd(["info", "--format", "json", `${cluster.pool}/${names[0]}`]);
    expect(JSON.parse(info.stdout).group, "images released from the group").to.equal(undefined);
  });

  it("rollback restores every image of the group to the snapshot's data", async () => {
    const domain = uniqueName("db");
    const names = await newImages(2, cluster.pool, true);
    const specs = names.map((n) => `${cluster.pool}/${n}`);
    const before = await Promise.all(specs.map((s) => checksum(cluster, s)));
    const request = requestFor(domain, "vmsnap-uid-rb", names);
    await backend.create(request);
    for (const spec of specs) await overwrite(cluster, spec);
    const after = await Promise.all(specs.map((s) => checksum(cluster, s)));
    expect(after[0]).to.not.equal(before[0]);
    expect(after[1]).to.not.equal(before[1]);
    await backend.rollback(request);
    expect(await Promise.all(specs.map((s) => checksum(cluster, s)))).to.deep.equal(before);
    await backend.remove(request);
  });

  it("keeps the group's members equal to the domain's disks", async () => {
    const domain = uniqueName("grow");
    const [a, b, c] = await newImages(3);
    const group = { pool: cluster.pool, group: groupNameForDomain(domain) };
    const first = requestFor(domain, "s-ab", [a!, b!]);
    await backend.create(first);
    // vdb detached, vdc attached: the next snapshot holds exactly the current disks.
    const second = {
      domain,
      name: "s-ac",
      disks: [rbdDisk("vda", cluster.pool, a!), rbdDisk("vdc", cluster.pool, c!)],
    };
    await backend.create(second);
    expect((await listGroupImages(runner, group)).map((i) => i.image).sort()).to.deep.equal(
      [a, c].sort(),
    );
    // The older snapshot still removes cleanly, including its member snapshot on the detached image.
    await backend.remove(first);
    const hidden = await cluster.rbd([
      "snap",
      "ls",
      "--all",
      "--format",
      "json",
      `${cluster.pool}/${b}`,
    ]);
    expect(JSON.parse(hidden.stdout)).to.deep.equal([]);
    await backend.remove(second);
  });

  it("refuses an image that belongs to another group, naming that group", async () => {
    const [mine, taken] = await newImages(2);
    const foreign = { pool: cluster.pool, group: uniqueName("someone-else") };
    await ensureGroup(runner, foreign);
    await addImageToGroup(runner, foreign, { pool: cluster.pool, image: taken! });
    const request = requestFor(uniqueName("clash"), "s1", [mine!, taken!]);
    const error = await backend.create(request).then(
      () => undefined,
      (err: unknown) => err,
    );
    expect(isStorageError(error, "AlreadyInGroup"), String(error)).to.equal(true);
    expect(String(error)).to.include(`${cluster.pool}/${foreign.group}`);
    await cluster.rbd(["group", "rm", `${cluster.pool}/${foreign.group}`]);
    await backend.remove(request);
  });

  it("puts images of two pools in one group and snapshots them together", async () => {
    const otherPool = "vmsnap-test-b";
    await cluster.createPool(otherPool);
    const [inFirst] = await newImages(1);
    const [inSecond] = await newImages(1, otherPool);
    const domain = uniqueName("span");
    const request = {
      domain,
      name: "s-span",
      disks: [rbdDisk("vda", cluster.pool, inFirst!), rbdDisk("vdb", otherPool, inSecond!)],
    };
    const handles = await backend.create(request);
    const group = { pool: cluster.pool, group: groupNameForDomain(domain) };
    expect(handles.map((h) => h.snapshot)).to.deep.equal([
      `${cluster.pool}/${group.group}@s-span`,
      `${cluster.pool}/${group.group}@s-span`,
    ]);
    const members = await listGroupImages(runner, group);
    expect(members.map((m) => `${m.pool}/${m.image}`).sort()).to.deep.equal(
      [`${cluster.pool}/${inFirst}`, `${otherPool}/${inSecond}`].sort(),
    );
    await backend.remove(request);
    expect(await groupExists(runner, group)).to.equal(false);
  });

  it("refuses disks in different RADOS namespaces before touching the cluster", async () => {
    const calls: string[][] = [];
    const counting = new RbdBackend({
      config: rbdConfigFor(cluster),
      runner: (args) => (calls.push([...args]), runner(args)),
    });
    const request = {
      domain: uniqueName("ns"),
      name: "s1",
      disks: [
        rbdDisk("vda", cluster.pool, "a", "tenant-1"),
        rbdDisk("vdb", cluster.pool, "b", "tenant-2"),
      ],
    };
    const error = await counting.create(request).then(
      () => undefined,
      (err: unknown) => err,
    );
    expect(isStorageError(error, "UnsupportedLayout"), String(error)).to.equal(true);
    expect(String(error)).to.match(/namespaces/);
    expect(calls).to.deep.equal([]);
  });

  it("benchmark mode snapshots each image by itself and removes them again", async () => {
    const sequential = new RbdBackend({
      config: rbdConfigFor(cluster),
      sequentialImageSnapshots: true,
    });
    const names = await newImages(2);
    const request = requestFor(uniqueName("seq"), "s-seq", names);
    const handles = await sequential.create(request);
    expect(handles.map((h) => h.snapshot)).to.deep.equal(
      names.map((n) => `${cluster.pool}/${n}@s-seq`),
    );
    for (const image of names) {
      expect(
        (await listImageSnapshots(runner, { pool: cluster.pool, image })).map((s) => s.name),
      ).to.deep.equal(["s-seq"]);
    }
    await sequential.remove(request);
    for (const image of names)
      expect(await listImageSnapshots(runner, { pool: cluster.pool, image })).to.deep.equal([]);
  });
});
