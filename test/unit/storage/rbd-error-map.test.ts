// Classifying failed rbd runs by exit code (= errno); stderr samples are what Ceph 16.2 printed.
import { expect } from "chai";
import { mapRbdFailure, stderrErrno, stderrSummary } from "../../../src/storage/rbd/error-map.ts";

const run = (exitCode: number, stderr: string) => ({ exitCode, stdout: "", stderr });
const LIBRBD =
  "2026-11-27T13:58:46.526+0000 7f0b5729b380 -1 librbd::api::Group: snap_create: snapshot with this name already exists: (17) File exists\n\n";

describe("RBD error mapping", () => {
  const cases: [string, number, string, string][] = [
    [
      "EEXIST on snap create",
      17,
      "rbd: failed to create snapshot: (17) File exists\n",
      "AlreadyExists",
    ],
    ["EEXIST from a group command (librbd line only)", 17, LIBRBD, "AlreadyExists"],
    [
      "ETIMEDOUT from --rados-osd-op-timeout",
      110,
      "rbd: error opening image a: (110) Connection timed out\n",
      "StorageTimeout",
    ],
    [
      "ETIMEDOUT from --client-mount-timeout",
      110,
      "rbd: couldn't connect to the cluster!\n",
      "StorageTimeout",
    ],
    ["EACCES", 13, "rbd: couldn't connect to the cluster!\n", "PermissionDenied"],
    [
      "EPERM (caps)",
      1,
      "librbd::ImageState: failed to open image: (1) Operation not permitted\nrbd: error opening image a: (1) Operation not permitted\n",
      "PermissionDenied",
    ],
    [
      "a missing keyring (exit 2, but not a missing pool)",
      2,
      "auth: unable to find a keyring on /x: (2) No such file or directory\nrbd: couldn't connect to the cluster!\n",
      "PermissionDenied",
    ],
    [
      "an unreadable keyring",
      5,
      "auth: failed to load /k: (5) Input/output error\nrbd: couldn't connect to the cluster!\n",
      "PermissionDenied",
    ],
    [
      "image has snapshots",
      39,
      "rbd: image has snapshots - these must be deleted with 'rbd snap purge' before the image can be removed.\n",
      "HasSnapshots",
    ],
    ["EBUSY outside snap rm", 16, "rbd: something busy: (16) Device or resource busy\n", "Busy"],
    [
      "a bad option (exit 1 without an errno)",
      1,
      "rbd: unrecognised option '--no-progress'\n",
      "Unknown",
    ],
    ["EINVAL", 22, "rbd: invalid spec 'p/a@'\n", "Unknown"],
  ];
  for (const [what, code, stderr, reason] of cases) {
    it(`${what} → ${reason}`, () => {
      const error = mapRbdFailure(["snap", "create"], run(code, stderr));
      expect(error.reason).to.equal(reason);
      expect(error.details.exitCode).to.equal(code);
      expect(error.message).to.include(`exit ${code}`);
    });
  }

  it("ENOENT is whatever the caller found missing, else Unknown — never a guess", () => {
    const stderr = "rbd: error opening pool 'nopool': (2) No such file or directory\n";
    expect(mapRbdFailure([], run(2, stderr)).reason).to.equal("Unknown");
    expect(mapRbdFailure([], run(2, stderr), "PoolNotFound").reason).to.equal("PoolNotFound");
    expect(mapRbdFailure([], run(2, stderr), "ImageNotFound").reason).to.equal("ImageNotFound");
  });

  it("per-operation overrides win (EBUSY on snap rm means protected)", () => {
    expect(
      mapRbdFailure([], run(16, "rbd: snapshot 's1' is protected from removal.\n"), undefined, {
        16: "Protected",
      }).reason,
    ).to.equal("Protected");
  });

  it("reads the errno and the telling line from stderr", () => {
    expect(stderrErrno(LIBRBD)).to.equal(17);
    expect(stderrErrno("rbd: couldn't connect to the cluster!\n")).to.equal(undefined);
    expect(stderrSummary("noise\nrbd: failed to create snapshot: (17) File exists\n\n")).to.equal(
      "rbd: failed to create snapshot: (17) File exists",
    );
    expect(stderrSummary(LIBRBD)).to.match(/snapshot with this name already exists/);
  });
});
