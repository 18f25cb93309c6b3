// Atomicity across images: a writer keeps image A one step ahead of (or level with) image B, as
// a guest's journal and data disks would be. Every group snapshot must show such a state; two
// image snapshots taken one after the other generally do not, which is why vmsnap uses groups.
import { randomUUID } from "node:crypto";
import { spawn, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import { fileURLToPath } from "node:url";
import { setTimeout as sleep } from "node:timers/promises";
import { expect } from "chai";
import { RbdBackend } from "../../../src/storage/rbd/backend.ts";
import { getCephCluster, type CephCluster } from "../../support/ceph/cluster.ts";
import {
  createImage,
  purgeImage,
  rbdConfigFor,
  rbdDisk,
  readCounter,
  uniqueName,
} from "../../support/ceph/fixtures.ts";

const WRITER = fileURLToPath(new URL("./lockstep-writer.py", import.meta.url));
// Debian's interpreter, which has python3-rbd (installed with ceph-common); a pyenv shim earlier
// in PATH would not.
const PYTHON = "/usr/bin/python3";
const TRIES = 10;

/** A consistent cut of the lock-step writer: A is written first, so A == B or A == B + 1. */
const consistent = (a: number, b: number) => a === b || a === b + 1;

describe("RBD group snapshot atomicity (real Ceph)", function () {
  this.timeout(300_000);
  let cluster: CephCluster;
  let writer: ChildProcess | undefined;
  const [imageA, imageB] = [uniqueName("ja"), uniqueName("jb")];

  before(async () => {
    cluster = await getCephCluster();
    for (const image of [imageA, imageB]) await createImage(cluster, `${cluster.pool}/${image}`);
  });
  after(async () => {
    if (writer?.exitCode === null) writer.kill("SIGKILL");
    for (const image of [imageA, imageB]) await purgeImage(cluster, `${cluster.pool}/${image}`);
  });

  async function startWriter(): Promise<ChildProcess> {
    const args = [
      WRITER,
      cluster.confPath,
      cluster.clientId,
      cluster.keyringPath,
      cluster.pool,
      imageA,
      imageB,
    ];
    const child = spawn(PYTHON, args, { stdio: ["ignore", "pipe", "inherit"] });
    let output = "";
    child.stdout!.on("data", (chunk: Buffer) => (output += chunk.toString()));
    const deadline = Date.now() + 30_000;
    while (!output.includes("ready")) {
      if (child.exitCode !== null || Date.now() > deadline)
        throw new Error(`writer did not start: ${output}`);
      await sleep(50);
    }
    return child;
  }

  it(`${TRIES}/${TRIES} group snapshots are consistent under lock-step writes (sequential image snapshots for contrast)`, async () => {
    const disks = [rbdDisk("vda", cluster.pool, imageA), rbdDisk("vdb", cluster.pool, imageB)];
    const domain = uniqueName("journal");
    const domainUUID = randomUUID();
    const grouped = new RbdBackend({ config: rbdConfigFor(cluster) });
    const sequential = new RbdBackend({
      config: rbdConfigFor(cluster),
      sequentialImageSnapshots: true,
    });
    const groupRequests = Array.from({ length: TRIES }, (_, i) => ({
      domain,
      domainUUID,
      name: `g-${i}`,
      disks,
    }));
    const seqRequests = Array.from({ length: TRIES }, (_, i) => ({
      domain,
      name: `s-${i}`,
      disks,
    }));

    writer = await startWriter();
    await sleep(300);
    for (let i = 0; i < TRIES; i++) {
      await grouped.create(groupRequests[i]!);
      await sequential.create(seqRequests[i]!);
    }
    writer.kill("SIGTERM");
    await once(writer, "exit");

    // Image snapshots can be read by name.
    const seqCuts: [number, number][] = [];
    for (const r of seqRequests) {
      seqCuts.push([
        await readCounter(cluster, `${cluster.pool}/${imageA}@${r.name}`),
        await readCounter(cluster, `${cluster.pool}/${imageB}@${r.name}`),
      ]);
    }
    // Ceph 16 cannot export a group snapshot by name: roll the group back to each and read the images.
    const groupCuts: [number, number][] = [];
    for (const r of groupRequests) {
      await grouped.rollback(r);
      groupCuts.push([
        await readCounter(cluster, `${cluster.pool}/${imageA}`),
        await readCounter(cluster, `${cluster.pool}/${imageB}`),
      ]);
    }
    const groupOk = groupCuts.filter(([a, b]) => consistent(a, b)).length;
    const seqOk = seqCuts.filter(([a, b]) => consistent(a, b)).length;
    console.log(
      `      group snapshots consistent: ${groupOk}/${TRIES}  ${JSON.stringify(groupCuts)}`,
    );
    console.log(
      `      sequential image snapshots consistent: ${seqOk}/${TRIES}  ${JSON.stringify(seqCuts)}`,
    );

    // The writer was really writing while the snapshots were taken.
    expect(groupCuts[0]![0], "writes before the first snapshot").to.be.above(0);
    expect(groupCuts[TRIES - 1]![0], "writes between the snapshots").to.be.above(groupCuts[0]![0]);
    expect(groupOk).to.equal(TRIES);
    // The check can see an inconsistent cut: otherwise the 10/10 above would prove nothing.
    expect(seqOk, "sequential image snapshots caught at least one torn state").to.be.below(TRIES);

    for (const r of [...groupRequests, ...seqRequests])
      await (r.name.startsWith("g") ? grouped : sequential).remove(r);
  });
});
