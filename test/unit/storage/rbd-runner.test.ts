// The process runner, against a stand-in `rbd` executable: arguments arrive verbatim (no shell),
// exit codes and output come back, a hung client is killed and reported as StorageTimeout.
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { expect } from "chai";
import { isStorageError } from "../../../src/storage/rbd/errors.ts";
import { createRbdRunner } from "../../../src/storage/rbd/runner.ts";

describe("RBD process runner", function () {
  this.timeout(10_000);
  let dir: string;
  let fakeRbd: string;

  before(() => {
    dir = mkdtempSync(join(tmpdir(), "rbd-runner-"));
    fakeRbd = join(dir, "rbd");
    // Prints each argument on its own line; `hang` sleeps, `fail` exits like an ENOENT.
    writeFileSync(
      fakeRbd,
      `#!/bin/sh
for a in "$@"; do printf '%s\\n' "$a"; done
case "$*" in *hang*) exec sleep 30;; esac
case "$*" in *fail*) echo "rbd: error opening image x: (2) No such file or directory" >&2; exit 2;; esac
exit 0
`,
    );
    chmodSync(fakeRbd, 0o755);
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  const config = () => ({
    confPath: "/c.conf",
    clientId: "vmsnap",
    keyringPath: "/k",
    opTimeoutSeconds: 4,
    rbdPath: fakeRbd,
  });

  it("passes every argument verbatim, after the connection options; no shell interprets them", async () => {
    const marker = join(dir, "pwned");
    const result = await createRbdRunner(config())(["snap", "ls", `x;touch ${marker}`, "$(id)"]);
    expect(result.exitCode).to.equal(0);
    expect(result.stdout.split("\n").slice(0, -1)).to.deep.equal([
      "--conf",
      "/c.conf",
      "--id",
      "vmsnap",
      "--keyring",
      "/k",
      "--rados-osd-op-timeout",
      "4",
      "--rados-mon-op-timeout",
      "4",
      "--client-mount-timeout",
      "4",
      "snap",
      "ls",
      `x;touch ${marker}`,
      "$(id)",
    ]);
  });

  it("returns a failing exit code with stderr instead of throwing", async () => {
    const result = await createRbdRunner(config())(["fail"]);
    expect(result.exitCode).to.equal(2);
    expect(result.stderr).to.match(/\(2\) No such file/);
  });

  it("kills a client that outlives the process timeout and reports StorageTimeout", async () => {
    const started = Date.now();
    const outcome = await createRbdRunner({ ...config(), processTimeoutMs: 300 })(["hang"]).catch(
      (e: unknown) => e,
    );
    expect(isStorageError(outcome, "StorageTimeout"), String(outcome)).to.equal(true);
    expect(Date.now() - started).to.be.below(3_000);
  });

  it("a missing executable is Unknown, not a timeout", async () => {
    const outcome = await createRbdRunner({ ...config(), rbdPath: join(dir, "nope") })(["x"]).catch(
      (e: unknown) => e,
    );
    expect(isStorageError(outcome, "Unknown"), String(outcome)).to.equal(true);
  });
});
