// The memory folder is really 0700 after start, whatever mode it was found with.
import { expect } from "chai";
import {
  chmodSync,
  chownSync,
  mkdirSync,
  mkdtempSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

import { makePrivateFolder } from "../../../src/hypervisor/memory-folder.ts";

async function rejection(promise: Promise<unknown>): Promise<string> {
  return promise.then(
    () => "resolved",
    (err: unknown) => String(err),
  );
}

describe("makePrivateFolder", () => {
  let base: string;
  beforeEach(() => {
    base = mkdtempSync(join(tmpdir(), "vmsnap-memdir-"));
  });
  afterEach(() => {
    rmSync(base, { recursive: true, force: true });
  });
  const modeOf = (path: string) => statSync(path).mode & 0o777;

  it("narrows a folder the kubelet created 0755 to 0700, saying what it found", async () => {
    const dir = join(base, "memory");
    mkdirSync(dir);
    chmodSync(dir, 0o755);
    expect(await makePrivateFolder(dir)).to.deep.equal({
      path: dir,
      previousMode: 0o755,
      changed: true,
    });
    expect(modeOf(dir)).to.equal(0o700);
  });

  it("creates a missing folder 0700, parents included", async () => {
    const dir = join(base, "var/lib/vmsnap/memory");
    const result = await makePrivateFolder(dir);
    expect(result).to.include({ changed: false, previousMode: undefined });
    expect(modeOf(dir)).to.equal(0o700);
  });

  it("leaves a private folder alone", async () => {
    const dir = join(base, "memory");
    mkdirSync(dir, { mode: 0o700 });
    chmodSync(dir, 0o700);
    expect(await makePrivateFolder(dir)).to.deep.equal({
      path: dir,
      previousMode: 0o700,
      changed: false,
    });
  });

  it("refuses a symlink or a file in the folder's place", async () => {
    const real = join(base, "elsewhere");
    mkdirSync(real);
    const link = join(base, "memory");
    symlinkSync(real, link);
    expect(await rejection(makePrivateFolder(link))).to.match(/not a folder/);
    expect(statSync(real).mode & 0o777, "the symlink's target is untouched").to.not.equal(0o700);
    const file = join(base, "file");
    writeFileSync(file, "");
    expect(await rejection(makePrivateFolder(file))).to.match(/EEXIST|not a folder/);
  });

  it("refuses a folder another user owns (run as root: the agent's case)", async function () {
    if (process.getuid?.() !== 0) this.skip();
    const dir = join(base, "memory");
    mkdirSync(dir);
    chownSync(dir, 65534, 65534);
    expect(await rejection(makePrivateFolder(dir))).to.match(/belongs to uid 65534/);
  });
});
