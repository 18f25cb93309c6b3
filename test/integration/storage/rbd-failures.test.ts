// How the RBD backend fails against the real cluster: typed reasons from exit codes (ENOENT
// told apart by looking), fast timeouts when the OSD or the mon stops answering, recovery
// after they come back, and unsafe names refused before any `rbd` process starts.
import { randomUUID } from "node:crypto";
import { expect } from "chai";
import { RbdBackend } from "../../../src/storage/rbd/backend.ts";
import type { RbdConfig } from "../../../src/storage/rbd/config.ts";
import { isStorageError, type StorageError } from "../../../src/storage/rbd/errors.ts";
import {
  createImageSnapshot,
  listImageSnapshots,
  removeImageSnapshot,
  rollbackImageSnapshot,
} from "../../../src/storage/rbd/image-snapshots.ts";
import { rollbackGroupSnapshot } from "../../../src/storage/rbd/group-snapshots.ts";
import { createRbdRunner, type RbdRunner } from "../../../src/storage/rbd/runner.ts";
import { getCephCluster, type CephCluster } from "../../support/ceph/cluster.ts";
import {
  createImage,
  ok,
  purgeImage,
  rbdConfigFor,
  rbdDisk,
  uniqueName,
} from "../../support/ceph/fixtures.ts";

async function failure(promise: Promise<unknown>): Promise<StorageError> {
  const outcome = await promise.then(
    () => undefined,
    (err: unknown) => err,
  );
  if (!isStorageError(outcome)) throw new Error(`expected a StorageError, got ${String(outcome)}`);
  return outcome;
}

describe("RBD failures (real Ceph)", function () {
  this.timeout(180_000);
  let cluster: CephCluster;
  let runner: RbdRunner;
  let image: string;
  const images: string[] = [];

  before(async () => {
    cluster = await getCephCluster();
    runner = createRbdRunner(rbdConfigFor(cluster));
    image = uniqueName("fimg");
    images.push(`${cluster.pool}/${image}`);
    await createImage(cluster, `${cluster.pool}/${image}`);
  });
  after(async () => {
    for (const spec of images) await purgeImage(cluster, spec);
  });

  describe("typed reasons", () => {
    it("a missing pool is PoolNotFound, a missing image ImageNotFound, though both exit 2", async () => {
      const noPool = await failure(
        createImageSnapshot(runner, { pool: "no-such-pool", image }, "s"),
      );
      expect(noPool.reason).to.equal("PoolNotFound");
      expect(noPool.details.exitCode).to.equal(2);
      const noImage = await failure(
        createImageSnapshot(runner, { pool: cluster.pool, image: "no-such-image" }, "s"),
      );
      expect(noImage.reason).to.equal("ImageNotFound");
      expect(noImage.details.exitCode).to.equal(2);
      const noNamespace = await failure(
        listImageSnapshots(runner, { pool: cluster.pool, namespace: "no-such-ns", image }),
      );
      expect(noNamespace.reason).to.equal("PoolNotFound");
    });

    it("rolling back to a missing snapshot is SnapshotNotFound; to a missing group GroupNotFound", async () => {
      const noSnap = await failure(
        rollbackImageSnapshot(runner, { pool: cluster.pool, image }, "never-made"),
      );
      expect(noSnap.reason).to.equal("SnapshotNotFound");
      const noGroup = await failure(
        rollbackGroupSnapshot(runner, { pool: cluster.pool, group: "no-such-group" }, "s"),
      );
      expect(noGroup.reason).to.equal("GroupNotFound");
    });

    it("removing a missing snapshot or image succeeds, in a missing pool it does not", async () => {
      await removeImageSnapshot(runner, { pool: cluster.pool, image }, "never-made");
      await removeImageSnapshot(runner, { pool: cluster.pool, image: "no-such-image" }, "s");
      const noPool = await failure(
        removeImageSnapshot(runner, { pool: "no-such-pool", image }, "s"),
      );
      expect(noPool.reason).to.equal("PoolNotFound");
    });

    it("a protected snapshot is Protected (EBUSY) and stays", async () => {
      await createImageSnapshot(runner, { pool: cluster.pool, image }, "kept");
      ok(await cluster.rbd(["snap", "protect", `${cluster.pool}/${image}@kept`]), "protect");
      const protectedError = await failure(
        removeImageSnapshot(runner, { pool: cluster.pool, image }, "kept"),
      );
      expect(protectedError.reason).to.equal("Protected");
      expect(protectedError.details.exitCode).to.equal(16);
      ok(await cluster.rbd(["snap", "unprotect", `${cluster.pool}/${image}@kept`]), "unprotect");
      await removeImageSnapshot(runner, { pool: cluster.pool, image }, "kept");
    });

    it("a client whose caps are read-only gets PermissionDenied (EPERM), a wrong keyring too", async () => {
      const readOnly = await cluster.createClient(uniqueName("ro"), {
        mon: "profile rbd",
        osd: "profile rbd-read-only",
      });
      const roRunner = createRbdRunner({ ...rbdConfigFor(cluster), ...readOnly });
      const denied = await failure(
        createImageSnapshot(roRunner, { pool: cluster.pool, image }, "ro"),
      );
      expect(denied.reason).to.equal("PermissionDenied");
      expect(denied.details.exitCode).to.equal(1);
      const noKeyring = createRbdRunner({
        ...rbdConfigFor(cluster),
        keyringPath: `${cluster.dir}/missing.keyring`,
        opTimeoutSeconds: 3,
      });
      const unauthenticated = await failure(
        createImageSnapshot(noKeyring, { pool: cluster.pool, image }, "x"),
      );
      expect(unauthenticated.reason, unauthenticated.message).to.equal("PermissionDenied");
    });
  });

  describe("unsafe names", () => {
    const hostile = [
      "a;touch /tmp/pwned",
      "$(id)",
      "a`id`",
      "a|b",
      "a&b",
      "a b",
      "a\nb",
      "a@b",
      "a/b",
      "-rf",
      ".group.x",
      "",
      "x".repeat(129),
    ];

    it("are refused with InvalidName before any rbd process starts", async () => {
      let started = 0;
      const counting: RbdRunner = (args) => {
        started += 1;
        return runner(args);
      };
      const backend = new RbdBackend({ config: rbdConfigFor(cluster), runner: counting });
      const ops = ["create", "remove", "rollback"] as const;
      for (const bad of hostile) {
        const requests = [
          { domain: "d", name: bad, disks: [rbdDisk("vda", cluster.pool, image)] },
          { domain: "d", name: "ok", disks: [rbdDisk("vda", bad, image)] },
          { domain: "d", name: "ok", disks: [rbdDisk("vda", cluster.pool, bad)] },
          { domain: "d", name: "ok", disks: [rbdDisk("vda", cluster.pool, image, bad || "x y")] },
          {
            domain: "d",
            domainUUID: randomUUID(),
            name: bad,
            disks: [rbdDisk("vda", cluster.pool, image), rbdDisk("vdb", cluster.pool, "other")],
          },
        ];
        for (const request of requests) {
          for (const op of ops) {
            const error = await failure(backend[op](request));
            expect(error.reason, `${op} ${JSON.stringify(request)}`).to.equal("InvalidName");
          }
        }
        const direct = await failure(
          createImageSnapshot(counting, { pool: cluster.pool, image }, bad),
        );
        expect(direct.reason).to.equal("InvalidName");
      }
      expect(started, "rbd processes started").to.equal(0);
      // The same runner does start processes for valid names: the count above is meaningful.
      await listImageSnapshots(counting, { pool: cluster.pool, image });
      expect(started).to.equal(1);
    });
  });

  describe("outages", () => {
    const opTimeoutSeconds = 3;
    let config: RbdConfig;
    let backend: RbdBackend;
    let groupImages: string[];
    let paused: (() => void) | undefined;

    before(async () => {
      config = rbdConfigFor(cluster, { opTimeoutSeconds });
      backend = new RbdBackend({ config });
      groupImages = [uniqueName("oimg"), uniqueName("oimg")];
      for (const name of groupImages) {
        images.push(`${cluster.pool}/${name}`);
        await createImage(cluster, `${cluster.pool}/${name}`);
      }
    });
    afterEach(() => {
      // A failed assertion must not leave the shared cluster frozen for the next test file.
      paused?.();
      paused = undefined;
    });

    const limitMs = () => opTimeoutSeconds * 3_000 + 5_000 + 1_000;
    const single = (name: string) => ({
      domain: "outage",
      name,
      disks: [rbdDisk("vda", cluster.pool, image)],
    });
    const group = (name: string) => ({
      domain: uniqueName("outage"),
      domainUUID: randomUUID(),
      name,
      disks: groupImages.map((img, i) => rbdDisk(`vd${"ab"[i]}`, cluster.pool, img)),
    });

    for (const daemon of ["OSD", "mon"] as const) {
      it(`with the ${daemon} stopped, snapshots fail as StorageTimeout within the timeout, and work after it resumes`, async () => {
        const pause = daemon === "OSD" ? cluster.pauseOsd : cluster.pauseMon;
        const resume = daemon === "OSD" ? cluster.resumeOsd : cluster.resumeMon;
        const groupRequest = group(`g-${daemon}`);
        pause();
        paused = resume;
        for (const request of [single(`s-${daemon}`), groupRequest]) {
          const started = Date.now();
          const error = await failure(backend.create(request));
          const elapsed = Date.now() - started;
          expect(error.reason, error.message).to.equal("StorageTimeout");
          // Ceph's own timeout (exit 110) fired, not merely our process kill.
          expect(error.details.exitCode, error.message).to.equal(110);
          expect(elapsed, "failed within the configured timeout").to.be.below(limitMs());
          expect(elapsed, "Ceph's own timeout fired, not an instant error").to.be.at.least(
            opTimeoutSeconds * 1_000 - 200,
          );
        }
        resume();
        paused = undefined;
        // A timed-out create has unknown outcome; retrying with the same name completes it.
        for (const request of [single(`s-${daemon}`), groupRequest]) {
          const handles = await backend.create(request);
          expect(handles).to.have.length(request.disks.length);
          await backend.remove(request);
        }
      });
    }
  });
});
