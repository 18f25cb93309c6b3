// The rbd invocations the backend makes, seen through an injected runner that plays Ceph's
// recorded answers: retries are no-ops, an interrupted group snapshot is redone, the frozen
// window costs one call after prepare(), two without.
import { expect } from "chai";
import { RbdBackend } from "../../../src/storage/rbd/backend.ts";
import { isStorageError } from "../../../src/storage/rbd/errors.ts";
import type { RbdResult, RbdRunner } from "../../../src/storage/rbd/runner.ts";
import type { Disk } from "../../../src/hypervisor/disk.ts";

const rbd = (target: string, image: string): Disk => ({
  target,
  device: "disk",
  type: "network",
  readonly: false,
  shareable: false,
  plan: { backend: "rbd", rbd: { pool: "rbd", image, monitors: [] } },
});
const okJson = (value: unknown): RbdResult => ({
  exitCode: 0,
  stdout: JSON.stringify(value),
  stderr: "",
});
const OK: RbdResult = { exitCode: 0, stdout: "", stderr: "" };
const EEXIST: RbdResult = {
  exitCode: 17,
  stdout: "",
  stderr: "rbd: failed to create snapshot: (17) File exists\n",
};

/** A runner answering by the subcommand (the args after the connection options). */
function scripted(answer: (command: string) => RbdResult): { runner: RbdRunner; calls: string[] } {
  const calls: string[] = [];
  const runner: RbdRunner = async (args) => {
    const command = args.join(" ");
    calls.push(command);
    return answer(command);
  };
  return { runner, calls };
}

const config = { confPath: "/c", clientId: "vmsnap", keyringPath: "/k" };
const members = [
  { image: "a", pool: "rbd", namespace: "", state: 0 },
  { image: "b", pool: "rbd", namespace: "", state: 0 },
];
const UUID = "6695eb01-f6a4-8304-79aa-97f2502e193f";
const GROUP = `rbd/vmsnap-${UUID}`;
const request = {
  domain: "web",
  domainUUID: UUID,
  name: "uid-1",
  disks: [rbd("vda", "a"), rbd("vdb", "b")],
};

describe("RBD backend invocations", () => {
  it("a group snapshot without prepare() costs one membership check and one snapshot", async () => {
    const { runner, calls } = scripted((c) =>
      c.startsWith("group image list") ? okJson(members) : OK,
    );
    await new RbdBackend({ config, runner }).create(request);
    expect(calls).to.deep.equal([
      `group image list ${GROUP} --format json`,
      `group snap create ${GROUP}@uid-1`,
    ]);
  });

  it("after prepare() the frozen window holds the snapshot alone; a retried create checks again", async () => {
    const { runner, calls } = scripted((c) =>
      c.startsWith("group image list") ? okJson(members) : OK,
    );
    const backend = new RbdBackend({ config, runner });
    await backend.prepare(request);
    const prepared = calls.length;
    await backend.create(request);
    expect(calls.slice(prepared)).to.deep.equal([`group snap create ${GROUP}@uid-1`]);
    await backend.create(request);
    expect(calls.slice(prepared + 1)).to.deep.equal([
      `group image list ${GROUP} --format json`,
      `group snap create ${GROUP}@uid-1`,
    ]);
  });

  it("prepare() of other images, or of another snapshot, does not spare the check", async () => {
    const { runner, calls } = scripted((c) =>
      c.startsWith("group image list") ? okJson(members) : OK,
    );
    const backend = new RbdBackend({ config, runner });
    await backend.prepare({ ...request, disks: [rbd("vda", "a"), rbd("vdc", "c")] });
    await backend.prepare({ ...request, name: "uid-0" });
    const prepared = calls.length;
    await backend.create(request);
    expect(calls.slice(prepared)).to.deep.equal([
      `group image list ${GROUP} --format json`,
      `group snap create ${GROUP}@uid-1`,
    ]);
  });

  it("a first snapshot creates the group and adds the images before snapshotting", async () => {
    const { runner, calls } = scripted((c) => (c.startsWith("group image list") ? okJson([]) : OK));
    await new RbdBackend({ config, runner }).create(request);
    expect(calls).to.deep.equal([
      `group image list ${GROUP} --format json`,
      `group create ${GROUP}`,
      `group image add ${GROUP} rbd/a`,
      `group image add ${GROUP} rbd/b`,
      `group snap create ${GROUP}@uid-1`,
    ]);
  });

  it("EEXIST on a complete group snapshot means a previous attempt landed: success, nothing redone", async () => {
    const { runner, calls } = scripted((c) => {
      if (c.startsWith("group image list")) return okJson(members);
      if (c.startsWith("group snap create")) return EEXIST;
      if (c.startsWith("group snap ls")) return okJson([{ snapshot: "uid-1", state: "ok" }]);
      return OK;
    });
    const handles = await new RbdBackend({ config, runner }).create(request);
    expect(handles.map((h) => h.snapshot)).to.deep.equal([`${GROUP}@uid-1`, `${GROUP}@uid-1`]);
    expect(calls.filter((c) => c.startsWith("group snap rm"))).to.deep.equal([]);
  });

  it("EEXIST on an incomplete group snapshot (interrupted create) removes it and creates it again", async () => {
    let creates = 0;
    const { runner, calls } = scripted((c) => {
      if (c.startsWith("group image list")) return okJson(members);
      if (c.startsWith("group snap create")) return ++creates === 1 ? EEXIST : OK;
      if (c.startsWith("group snap ls"))
        return okJson([{ snapshot: "uid-1", state: "incomplete" }]);
      return OK;
    });
    await new RbdBackend({ config, runner }).create(request);
    expect(calls.slice(1)).to.deep.equal([
      `group snap create ${GROUP}@uid-1`,
      `group snap ls ${GROUP} --format json`,
      `group snap rm ${GROUP}@uid-1`,
      `group snap create ${GROUP}@uid-1`,
    ]);
  });

  it("EEXIST on an image snapshot is a no-op", async () => {
    const { runner, calls } = scripted(() => EEXIST);
    const single = { domain: "web", name: "uid-2", disks: [rbd("vda", "a")] };
    expect(await new RbdBackend({ config, runner }).create(single)).to.have.length(1);
    expect(calls).to.deep.equal(["snap create --no-progress rbd/a@uid-2"]);
  });

  it("ENOENT is resolved by looking: pool present, image absent → ImageNotFound", async () => {
    const { runner, calls } = scripted((c) => {
      if (c.startsWith("namespace ls")) return okJson([]);
      return {
        exitCode: 2,
        stdout: "",
        stderr: "rbd: error opening image a: (2) No such file or directory\n",
      };
    });
    const error = await new RbdBackend({ config, runner })
      .create({ domain: "web", name: "uid-3", disks: [rbd("vda", "a")] })
      .catch((e: unknown) => e);
    expect(isStorageError(error, "ImageNotFound"), String(error)).to.equal(true);
    expect(calls).to.deep.equal([
      "snap create --no-progress rbd/a@uid-3",
      "namespace ls --format json rbd",
      "info --format json rbd/a",
    ]);
  });

  it("remove of the last group snapshot also removes the now useless group", async () => {
    const { runner, calls } = scripted((c) => {
      if (c.startsWith("group snap ls")) return okJson([]);
      if (c.startsWith("group ls")) return okJson([`vmsnap-${UUID}`]);
      return OK;
    });
    await new RbdBackend({ config, runner }).remove(request);
    expect(calls).to.deep.equal([
      `group snap rm ${GROUP}@uid-1`,
      `group snap ls ${GROUP} --format json`,
      "group ls rbd --format json",
      `group rm ${GROUP}`,
    ]);
  });

  it("remove goes by the handles status recorded: a snapshot in an older, name-keyed group is removed there", async () => {
    const { runner, calls } = scripted((c) => {
      if (c.startsWith("group snap ls")) return okJson([]);
      if (c.startsWith("group ls")) return okJson(["vmsnap-web"]);
      return OK;
    });
    const recorded = ["a", "b"].map((image, i) => ({
      target: `vd${"ab"[i]}`,
      backend: "rbd",
      source: `rbd/${image}`,
      snapshot: "rbd/vmsnap-web@uid-1",
    }));
    await new RbdBackend({ config, runner }).remove({ ...request, recorded });
    expect(calls).to.deep.equal([
      "group snap rm rbd/vmsnap-web@uid-1",
      "group snap ls rbd/vmsnap-web --format json",
      "group ls rbd --format json",
      "group rm rbd/vmsnap-web",
    ]);
  });

  it("an image still in the domain's old name-keyed group is moved to its UUID group; another group's is refused", async () => {
    const { runner, calls } = scripted((c) => {
      if (c.startsWith("group image list")) return okJson([]);
      if (
        c === `group image add ${GROUP} rbd/a` &&
        !calls.includes("group image remove rbd/vmsnap-web rbd/a")
      )
        return {
          exitCode: 17,
          stdout: "",
          stderr: "librbd: image already in a group (17) File exists\n",
        };
      if (c.startsWith("info"))
        return okJson({ group: c.includes("rbd/a ") ? "rbd/vmsnap-web" : "rbd/other" });
      if (c === `group image add ${GROUP} rbd/b`)
        return { exitCode: 17, stdout: "", stderr: "(17) File exists\n" };
      return OK;
    });
    const error = await new RbdBackend({ config, runner })
      .prepare(request)
      .catch((e: unknown) => e);
    expect(calls.slice(2, 6)).to.deep.equal([
      `group image add ${GROUP} rbd/a`,
      "info rbd/a --format json",
      "group image remove rbd/vmsnap-web rbd/a",
      `group image add ${GROUP} rbd/a`,
    ]);
    expect(isStorageError(error, "AlreadyInGroup"), String(error)).to.equal(true);
    expect(String(error)).to.include("rbd/other");
  });

  it("verify lists each recorded group once and passes when it holds exactly the recorded images", async () => {
    const { runner, calls } = scripted(() => okJson(members));
    const handles = await new RbdBackend({ config, runner: async () => okJson(members) }).create(
      request,
    );
    await new RbdBackend({ config, runner }).verify(handles);
    expect(calls).to.deep.equal([`group image list ${GROUP} --format json`]);
  });

  it("verify fails MembershipChanged when the group gained a foreign image or lost one of ours", async () => {
    const handles = await new RbdBackend({ config, runner: async () => okJson(members) }).create(
      request,
    );
    const foreign = { image: "x", pool: "rbd", namespace: "", state: 0 };
    for (const [now, says] of [
      [[...members, foreign], /now also holds rbd\/x/],
      [[members[0]], /no longer holds rbd\/b/],
    ] as const) {
      const error = await new RbdBackend({ config, runner: async () => okJson(now) })
        .verify(handles)
        .catch((e: unknown) => e);
      expect(isStorageError(error, "MembershipChanged"), String(error)).to.equal(true);
      expect(String(error)).to.match(says);
    }
  });

  it("verify has nothing to ask of image snapshots", async () => {
    const { runner, calls } = scripted(() => OK);
    const single = { domain: "web", name: "uid-2", disks: [rbd("vda", "a")] };
    const handles = await new RbdBackend({ config, runner }).create(single);
    await new RbdBackend({ config, runner }).verify(handles);
    expect(calls).to.deep.equal(["snap create --no-progress rbd/a@uid-2"]);
  });

  it("the real runner passes conf, id, keyring and Ceph timeouts, then the subcommand", async () => {
    const { connectionArgs } = await import("../../../src/storage/rbd/runner.ts");
    expect(connectionArgs({ ...config, opTimeoutSeconds: 7 })).to.deep.equal([
      "--conf",
      "/c",
      "--id",
      "vmsnap",
      "--keyring",
      "/k",
      "--rados-osd-op-timeout",
      "7",
      "--rados-mon-op-timeout",
      "7",
      "--client-mount-timeout",
      "7",
    ]);
  });
});
