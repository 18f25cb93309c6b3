// Several RBD disks of one domain → one group snapshot of the domain's group (named after its
// UUID), against the real cluster: created, listed, retried, rolled back, removed together with
// the group; membership follows the domain's disks; an image of another group and a split across
// namespaces are refused with a clear error. Two hosts' domains of one name never share a group,
// a membership changed between prepare and create is caught, and the name-keyed groups of older
// releases stay removable and restorable by their recorded handles.
import { randomUUID } from "node:crypto";
import { expect } from "chai";
import { RbdBackend } from "../../../src/storage/rbd/backend.ts";
import { isStorageError } from "../../../src/storage/rbd/errors.ts";
import {
  createGroupSnapshot,
  listGroupSnapshots,
} from "../../../src/storage/rbd/group-snapshots.ts";
import {
  addImageToGroup,
  ensureGroup,
  groupExists,
  listGroupImages,
} from "../../../src/storage/rbd/groups.ts";
import { listImageSnapshots } from "../../../src/storage/rbd/image-snapshots.ts";
import {
  groupNameForDomainUUID,
  legacyGroupNameForDomain,
} from "../../../src/storage/rbd/names.ts";
import { createRbdRunner, type RbdRunner } from "../../../src/storage/rbd/runner.ts";
import type { DiskSnapshotHandle, SnapshotRequest } from "../../../src/storage/backend.ts";
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

  /** One UUID per domain name of this file: each test's domain is one VM. */
  const uuids = new Map<string, string>();
  const uuidOf = (domain: string) =>
    uuids.get(domain) ?? uuids.set(domain, randomUUID()).get(domain)!;
  const groupOf = (domain: string, pool = cluster.pool) => ({
    pool,
    group: groupNameForDomainUUID(uuidOf(domain)),
  });

  function requestFor(
    domain: string,
    name: string,
    imageNames: string[],
    pool = cluster.pool,
  ): SnapshotRequest {
    return {
      domain,
      domainUUID: uuidOf(domain),
      name,
      disks: imageNames.map((image, i) => rbdDisk(`vd${"abcdefgh"[i]}`, pool, image)),
    };
  }

  /** The group snapshots Ceph holds a member of on `image`: what a rollback would revert. */
  async function memberOf(image: string): Promise<string[]> {
    const r = await cluster.rbd([
      "snap",
      "ls",
      "--all",
      "--format",
      "json",
      `${cluster.pool}/${image}`,
    ]);
    const snaps = JSON.parse(r.stdout || "[]") as Array<{
      namespace?: { type: string; group?: string; "group snap"?: string };
    }>;
    return snaps
      .filter((s) => s.namespace?.type === "group")
      .map((s) => `${s.namespace!.group}@${s.namespace!["group snap"]}`);
  }

  it("snapshots three disks as one group snapshot with pool/group@name handles; retries are no-ops", async () => {
    const domain = uniqueName("web");
    const names = await newImages(3);
    const request = requestFor(domain, "vmsnap-uid-g1", names);
    const group = groupOf(domain);
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
    const group = groupOf(domain);
    const first = requestFor(domain, "s-ab", [a!, b!]);
    await backend.create(first);
    // vdb detached, vdc attached: the next snapshot holds exactly the current disks.
    const second = {
      domain,
      domainUUID: uuidOf(domain),
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
      domainUUID: uuidOf(domain),
      name: "s-span",
      disks: [rbdDisk("vda", cluster.pool, inFirst!), rbdDisk("vdb", otherPool, inSecond!)],
    };
    const handles = await backend.create(request);
    const group = groupOf(domain);
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
  describe("whose group it is (issue 12, hole 7)", () => {
    const handlesIn = (handles: readonly DiskSnapshotHandle[]) => [
      ...new Set(handles.map((h) => h.snapshot)),
    ];

    it("two hosts' domains of one name on one pool get a group each: each snapshot holds its own images only", async () => {
      const domain = uniqueName("twin");
      const [a1, a2, b1, b2] = await newImages(4);
      const hostA = new RbdBackend({ config: rbdConfigFor(cluster) });
      const hostB = new RbdBackend({ config: rbdConfigFor(cluster) });
      const onA = {
        ...requestFor(domain, "vmsnap-uid-on-a", [a1!, a2!]),
        domainUUID: randomUUID(),
      };
      const onB = {
        ...requestFor(domain, "vmsnap-uid-on-b", [b1!, b2!]),
        domainUUID: randomUUID(),
      };
      // Interleaved as two agents would: B prepares between A's prepare and A's create. With
      // groups named after the domain, B's prepare took A's images out of the shared group and
      // A's group snapshot held B's images while A's status listed its own.
      await hostA.prepare(onA);
      await hostB.prepare(onB);
      const handlesA = await hostA.create(onA);
      const handlesB = await hostB.create(onB);

      const groupA = groupNameForDomainUUID(onA.domainUUID);
      const groupB = groupNameForDomainUUID(onB.domainUUID);
      expect(handlesIn(handlesA)).to.deep.equal([`${cluster.pool}/${groupA}@vmsnap-uid-on-a`]);
      expect(handlesIn(handlesB)).to.deep.equal([`${cluster.pool}/${groupB}@vmsnap-uid-on-b`]);
      for (const image of [a1!, a2!])
        expect(await memberOf(image), image).to.deep.equal([`${groupA}@vmsnap-uid-on-a`]);
      for (const image of [b1!, b2!])
        expect(await memberOf(image), image).to.deep.equal([`${groupB}@vmsnap-uid-on-b`]);
      await hostA.verify(handlesA);
      await hostB.verify(handlesB);

      await hostA.remove({ ...onA, recorded: handlesA });
      await hostB.remove({ ...onB, recorded: handlesB });
      for (const group of [groupA, groupB])
        expect(await groupExists(runner, { pool: cluster.pool, group }), group).to.equal(false);
    });

    it("a foreign image added between prepare and create: verify fails MembershipChanged, and removal takes the snapshot off it", async () => {
      const domain = uniqueName("raced");
      const [mine1, mine2, foreign] = await newImages(3);
      const request = requestFor(domain, "vmsnap-uid-raced", [mine1!, mine2!]);
      const group = groupOf(domain);
      await backend.prepare(request);
      // Someone else's membership change, between prepare and the frozen window's create.
      await addImageToGroup(runner, group, { pool: cluster.pool, image: foreign! });
      const handles = await backend.create(request);
      expect(
        await memberOf(foreign!),
        "the hazard: the snapshot holds the foreign image",
      ).to.deep.equal([`${group.group}@vmsnap-uid-raced`]);

      const error = await backend.verify(handles).then(
        () => undefined,
        (err: unknown) => err,
      );
      expect(isStorageError(error, "MembershipChanged"), String(error)).to.equal(true);
      expect(String(error)).to.include(`now also holds ${cluster.pool}/${foreign}`);

      await backend.remove({ ...request, recorded: handles });
      for (const image of [mine1!, mine2!, foreign!])
        expect(await memberOf(image), image).to.deep.equal([]);
      expect(await groupExists(runner, group)).to.equal(false);
    });

    it("one of ours taken out between prepare and create: verify fails MembershipChanged", async () => {
      const domain = uniqueName("shrunk");
      const [mine1, mine2] = await newImages(2);
      const request = requestFor(domain, "vmsnap-uid-shrunk", [mine1!, mine2!]);
      const group = groupOf(domain);
      await backend.prepare(request);
      await cluster.rbd([
        "group",
        "image",
        "rm",
        `${cluster.pool}/${group.group}`,
        `${cluster.pool}/${mine2}`,
      ]);
      const handles = await backend.create(request);
      expect(await memberOf(mine2!), "status would list a disk the snapshot lacks").to.deep.equal(
        [],
      );
      const error = await backend.verify(handles).then(
        () => undefined,
        (err: unknown) => err,
      );
      expect(isStorageError(error, "MembershipChanged"), String(error)).to.equal(true);
      expect(String(error)).to.include(`no longer holds ${cluster.pool}/${mine2}`);
      await backend.remove({ ...request, recorded: handles });
    });

    it("a snapshot an older release took in the name-keyed group: the images move to the UUID group, and the old one still reverts and is removed by its handles", async () => {
      const domain = uniqueName("upgraded");
      const names = await newImages(2, cluster.pool, true);
      const specs = names.map((n) => `${cluster.pool}/${n}`);
      // As the older release left it: a group named after the domain, holding one snapshot.
      const legacy = { pool: cluster.pool, group: legacyGroupNameForDomain(domain) };
      await ensureGroup(runner, legacy);
      for (const image of names)
        await addImageToGroup(runner, legacy, { pool: cluster.pool, image });
      await createGroupSnapshot(runner, legacy, "vmsnap-uid-old");
      const oldHandles: DiskSnapshotHandle[] = names.map((image, i) => ({
        target: `vd${"ab"[i]}`,
        backend: "rbd",
        source: `${cluster.pool}/${image}`,
        snapshot: `${cluster.pool}/${legacy.group}@vmsnap-uid-old`,
      }));
      const before = await Promise.all(specs.map((s) => checksum(cluster, s)));
      for (const spec of specs) await overwrite(cluster, spec);

      // The upgraded controller's next snapshot of the domain.
      const request = requestFor(domain, "vmsnap-uid-new", names);
      const handles = await backend.create(request);
      await backend.verify(handles);
      expect(
        (await listGroupImages(runner, groupOf(domain))).map((i) => i.image).sort(),
      ).to.deep.equal([...names].sort());
      expect(await listGroupImages(runner, legacy), "the old group let them go").to.deep.equal([]);
      const after = await Promise.all(specs.map((s) => checksum(cluster, s)));

      await backend.revert({ name: "restore-old", handles: oldHandles });
      expect(
        await Promise.all(specs.map((s) => checksum(cluster, s))),
        "old snapshot restored",
      ).to.deep.equal(before);
      await backend.remove({ ...request, name: "vmsnap-uid-old", recorded: oldHandles });
      expect(
        await groupExists(runner, legacy),
        "the old group goes with its last snapshot",
      ).to.equal(false);
      await backend.revert({ name: "restore-new", handles });
      expect(
        await Promise.all(specs.map((s) => checksum(cluster, s))),
        "new snapshot intact",
      ).to.deep.equal(after);
      await backend.remove({ ...request, recorded: handles });
    });
  });
});
