// Restore of RBD disks from the handles a VMSnapshot records, against the real cluster: in
// place by rollback (group and image snapshots), and into new images by a librbd copy of the
// snapshot by id — the only way on Ceph 16 to read a group snapshot's member — leaving the
// source images untouched, crash-safe through a `.partial` image, never overwriting an image
// that is not our copy.
import { randomUUID } from "node:crypto";
import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import { expect } from "chai";
import type { DiskSnapshotHandle } from "../../../src/storage/backend.ts";
import { RbdBackend } from "../../../src/storage/rbd/backend.ts";
import { isStorageError } from "../../../src/storage/rbd/errors.ts";
import { createRbdRunner, type RbdRunner } from "../../../src/storage/rbd/runner.ts";
import {
  COPIED_FROM_KEY,
  copyRbdSnapshot,
  removeRestoredImage,
  revertRbdSnapshots,
  snapshotIdOf,
} from "../../../src/storage/rbd/snapshot-copy.ts";
import { snapshotRefOf } from "../../../src/storage/rbd/snapshot-ref.ts";
import type { RbdConfig } from "../../../src/storage/rbd/config.ts";
import { getCephCluster, type CephCluster } from "../../support/ceph/cluster.ts";
import {
  checksum,
  createImageWithData,
  ok,
  overwrite,
  purgeImage,
  readCounter,
  rbdConfigFor,
  rbdDisk,
  uniqueName,
} from "../../support/ceph/fixtures.ts";

/** Holds two images open and writes to both, as a running VM would (see rbd-atomicity.test.ts). */
const WRITER = fileURLToPath(new URL("./lockstep-writer.py", import.meta.url));

describe("RBD restore (real Ceph)", function () {
  this.timeout(120_000);
  let cluster: CephCluster;
  let config: RbdConfig;
  let runner: RbdRunner;
  let backend: RbdBackend;
  const images: string[] = [];
  const domains: {
    domain: string;
    domainUUID: string;
    name: string;
    disks: ReturnType<typeof rbdDisk>[];
  }[] = [];

  before(async () => {
    cluster = await getCephCluster();
    config = rbdConfigFor(cluster);
    runner = createRbdRunner(config);
    backend = new RbdBackend({ config });
  });
  after(async () => {
    for (const request of domains) await backend.remove(request).catch(() => undefined);
    for (const spec of images) await purgeImage(cluster, spec);
  });

  /** A domain with `count` RBD disks holding random data, snapshotted by the backend. */
  async function snapshotted(count: number) {
    const domain = uniqueName("rdom");
    const disks = [];
    for (let i = 0; i < count; i++) {
      const image = uniqueName("rimg");
      images.push(`${cluster.pool}/${image}`);
      await createImageWithData(cluster, `${cluster.pool}/${image}`, 2 * 1024 * 1024);
      disks.push(rbdDisk(`vd${String.fromCharCode(98 + i)}`, cluster.pool, image));
    }
    const request = { domain, domainUUID: randomUUID(), name: uniqueName("vmsnap"), disks };
    domains.push(request);
    const before = await Promise.all(disks.map((d) => checksum(cluster, specOf(d))));
    const handles = await backend.create(request);
    return { request, handles, before };
  }

  function specOf(disk: ReturnType<typeof rbdDisk>): string {
    const plan = disk.plan as { rbd: { pool: string; image: string } };
    return `${plan.rbd.pool}/${plan.rbd.image}`;
  }

  function newImage(): { pool: string; image: string } {
    const image = uniqueName("restored");
    images.push(`${cluster.pool}/${image}`, `${cluster.pool}/${image}.partial`);
    return { pool: cluster.pool, image };
  }

  it("reads a group snapshot handle as a group and an image snapshot handle as an image", async () => {
    const group = await snapshotted(2);
    const single = await snapshotted(1);
    expect(group.handles.map((h) => snapshotRefOf(h).kind)).to.deep.equal(["group", "group"]);
    expect(snapshotRefOf(single.handles[0]!).kind).to.equal("image");
  });

  it("reverts a group snapshot in place: every disk back to the snapshot's data", async () => {
    const { request, handles, before } = await snapshotted(2);
    for (const disk of request.disks) await overwrite(cluster, specOf(disk));
    await revertRbdSnapshots(runner, handles.map(snapshotRefOf));
    const after = await Promise.all(request.disks.map((d) => checksum(cluster, specOf(d))));
    expect(after).to.deep.equal(before);
  });

  it("refuses to revert while a client has an image open (Ceph's group rollback would not), changing nothing", async () => {
    const { request, handles } = await snapshotted(2);
    const [a, b] = request.disks.map(specOf) as [string, string];
    const writer = spawn(
      "/usr/bin/python3",
      [
        WRITER,
        cluster.confPath,
        cluster.clientId,
        cluster.keyringPath,
        cluster.pool,
        a.split("/")[1]!,
        b.split("/")[1]!,
      ],
      { stdio: ["ignore", "pipe", "inherit"] },
    );
    try {
      await new Promise<void>((resolve, reject) => {
        writer.stdout.once("data", () => resolve());
        writer.once("exit", (code) => reject(new Error(`writer exited ${code}`)));
      });
      const err = await revertRbdSnapshots(runner, handles.map(snapshotRefOf)).catch(
        (e: unknown) => e,
      );
      expect(isStorageError(err, "Busy"), String(err)).to.equal(true);
      expect(String(err)).to.contain("stop the domain");
    } finally {
      writer.kill("SIGTERM");
      await new Promise((resolve) => writer.once("exit", resolve));
    }
    const counter = await readCounter(cluster, a);
    expect(counter, "the writer's data is still there").to.be.greaterThan(0);
  });

  it("reverts an image snapshot in place, and reverting twice is harmless", async () => {
    const { request, handles, before } = await snapshotted(1);
    await overwrite(cluster, specOf(request.disks[0]!));
    const refs = handles.map(snapshotRefOf);
    await revertRbdSnapshots(runner, refs);
    await revertRbdSnapshots(runner, refs);
    expect(await checksum(cluster, specOf(request.disks[0]!))).to.equal(before[0]);
  });

  it("copies each member of a group snapshot into a new image with the snapshot's data; the source keeps its newer data", async () => {
    const { request, handles, before } = await snapshotted(2);
    for (const disk of request.disks) await overwrite(cluster, specOf(disk));
    const current = await Promise.all(request.disks.map((d) => checksum(cluster, specOf(d))));
    const copies = [];
    for (const handle of handles) {
      const dest = newImage();
      const outcome = await copyRbdSnapshot(runner, config, snapshotRefOf(handle), dest);
      expect(outcome.copied).to.equal(true);
      expect(outcome.bytesCopied).to.be.greaterThan(0);
      copies.push(`${dest.pool}/${dest.image}`);
    }
    expect(await Promise.all(copies.map((c) => checksum(cluster, c)))).to.deep.equal(before);
    const source = await Promise.all(request.disks.map((d) => checksum(cluster, specOf(d))));
    expect(source).to.deep.equal(current);
    const meta = JSON.parse(
      ok(await cluster.rbd(["image-meta", "list", "--format", "json", copies[0]!]), "meta").stdout,
    ) as Record<string, string>;
    expect(meta[COPIED_FROM_KEY]).to.contain(`@${request.name}`);
  });

  it("copies an image snapshot into a new image", async () => {
    const { handles, before } = await snapshotted(1);
    const dest = newImage();
    await copyRbdSnapshot(runner, config, snapshotRefOf(handles[0]!), dest);
    expect(await checksum(cluster, `${dest.pool}/${dest.image}`)).to.equal(before[0]);
  });

  it("a repeated copy is a no-op, and a leftover partial copy is replaced", async () => {
    const { handles, before } = await snapshotted(1);
    const ref = snapshotRefOf(handles[0]!);
    const dest = newImage();
    // A copy that died half way: the partial image exists, the final one does not.
    ok(
      await cluster.rbd(["create", "--size", "1M", `${dest.pool}/${dest.image}.partial`]),
      "create",
    );
    const first = await copyRbdSnapshot(runner, config, ref, dest);
    const second = await copyRbdSnapshot(runner, config, ref, dest);
    expect([first.copied, second.copied]).to.deep.equal([true, false]);
    expect(await checksum(cluster, `${dest.pool}/${dest.image}`)).to.equal(before[0]);
    const names = JSON.parse(
      ok(await cluster.rbd(["ls", "--format", "json", cluster.pool]), "ls").stdout,
    ) as string[];
    expect(names).not.to.include(`${dest.image}.partial`);
  });

  it("refuses to copy onto an image that is not its copy, and leaves that image alone", async () => {
    const { handles } = await snapshotted(1);
    const dest = newImage();
    await createImageWithData(cluster, `${dest.pool}/${dest.image}`, 1024 * 1024);
    const theirs = await checksum(cluster, `${dest.pool}/${dest.image}`);
    const err = await copyRbdSnapshot(runner, config, snapshotRefOf(handles[0]!), dest).catch(
      (e: unknown) => e,
    );
    expect(isStorageError(err, "AlreadyExists"), String(err)).to.equal(true);
    expect(await checksum(cluster, `${dest.pool}/${dest.image}`)).to.equal(theirs);
  });

  it("fails with SnapshotNotFound when the snapshot is gone, creating nothing", async () => {
    const { request, handles } = await snapshotted(2);
    await backend.remove(request);
    const dest = newImage();
    const err = await copyRbdSnapshot(runner, config, snapshotRefOf(handles[0]!), dest).catch(
      (e: unknown) => e,
    );
    expect(isStorageError(err, "SnapshotNotFound"), String(err)).to.equal(true);
    const info = await cluster.rbd(["info", `${dest.pool}/${dest.image}`]);
    expect(info.code).to.equal(2);
  });

  it("finds a group member's snapshot id, which no image@name can address", async () => {
    const { handles } = await snapshotted(2);
    const ref = snapshotRefOf(handles[0]!);
    expect(await snapshotIdOf(runner, ref)).to.be.a("number");
    const byName = await cluster.rbd([
      "export",
      "--no-progress",
      handles[0]!.snapshot.replace(/^[^/]+\/[^@]+/, handles[0]!.source),
      "-",
    ]);
    expect(byName.code).to.equal(2);
  });

  it("removes a restored image and its partial copy; removing again succeeds", async () => {
    const { handles } = await snapshotted(1);
    const dest = newImage();
    await copyRbdSnapshot(runner, config, snapshotRefOf(handles[0]!), dest);
    await removeRestoredImage(runner, dest);
    await removeRestoredImage(runner, dest);
    expect((await cluster.rbd(["info", `${dest.pool}/${dest.image}`])).code).to.equal(2);
  });
});

// Keeps the handle type in the test's vocabulary for readers.
export type { DiskSnapshotHandle };
