// The safety promise where nobody looked (issue 12), on real parts: kube-apiserver + etcd, a
// real Ceph cluster and the libvirt test driver hosted by a daemon, so a freeze made by someone
// else is visible to the controller exactly as an administrator's `virsh domfsfreeze` would be.
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { expect } from "chai";
import type { VMSnapshot } from "../../../src/api/types.ts";
import { startScenario, type Scenario } from "../../support/controller/snapshot-scenario.ts";

describe("safety: vmsnap undoes only what it did", function () {
  this.timeout(180_000);
  let s: Scenario;

  before(async () => {
    s = await startScenario();
  });
  after(async () => {
    await s?.stop();
  });

  const condition = (snapshot: VMSnapshot, type: string) =>
    snapshot.status?.conditions?.find((c) => c.type === type);

  describe("a guest someone else froze", () => {
    it("IfAvailable: Succeeded crash-consistent, never claims the freeze, and leaves their freeze in place", async () => {
      const domain = await s.newDomain({ rbdDisks: 1 });
      await s.host.hypervisor().fsFreeze(domain.name); // the administrator's freeze
      const watcher = await s.watchPhases("admin-frozen");
      await s.apply("admin-frozen", { quiesce: "IfAvailable" }, domain.name);
      const done = await s.waitFinal("admin-frozen");
      await watcher.stopAfter(done.status!.phase!);

      expect(watcher.phases).to.deep.equal(["Pending", "DisksSnapshotted", "Succeeded"]);
      const quiesced = condition(done, "Quiesced")!;
      expect(quiesced.status).to.equal("False");
      expect(quiesced.reason).to.equal("FreezeFailed");
      expect(quiesced.message).to.match(/already frozen by someone else/);
      expect(done.status!.frozenAt).to.equal(undefined);
      expect(await s.host.isFrozen(domain.name), "their freeze is still in place").to.equal(true);
      await s.host.hypervisor().fsThaw(domain.name);
    });

    it("Required: Failed QuiesceFailed before any disk is snapshotted, their freeze still in place", async () => {
      const domain = await s.newDomain({ rbdDisks: 1 });
      await s.host.hypervisor().fsFreeze(domain.name);
      await s.apply("admin-frozen-required", { quiesce: "Required" }, domain.name);
      const done = await s.waitFinal("admin-frozen-required");
      expect(done.status!.phase).to.equal("Failed");
      expect(done.status!.error?.reason).to.equal("QuiesceFailed");
      expect(await s.groupSnapshots(domain.name)).to.deep.equal([]);
      expect(await s.host.isFrozen(domain.name), "their freeze is still in place").to.equal(true);
      await s.host.hypervisor().fsThaw(domain.name);
    });
  });
});

describe("safety: a snapshot never holds another VM's disks (issue 12, hole 7)", function () {
  this.timeout(180_000);
  let s: Scenario;
  let bin: string;
  let foreign: string;

  // The controller's `rbd`, wrapped: right before each `group snap create` (after prepare set
  // the group's members, inside the frozen window) it adds another VM's image to the group, as
  // a second host snapshotting a domain of the same UUID, or an administrator, might.
  before(async () => {
    bin = mkdtempSync(join(tmpdir(), "vmsnap-rbd-wrap-"));
    const wrapper = join(bin, "rbd");
    foreign = `foreign-${Date.now()}`;
    writeFileSync(
      wrapper,
      [
        "#!/bin/bash",
        'args=("$@")',
        "for ((i = 0; i + 3 < ${#args[@]}; i++)); do",
        '  if [ "${args[i]}" = group ] && [ "${args[i+1]}" = snap ] && [ "${args[i+2]}" = create ]; then',
        '    spec="${args[i+3]}"',
        '    /usr/bin/rbd "${args[@]:0:i}" group image add "${spec%@*}" "${spec%%/*}/FOREIGN" >&2 || true',
        "  fi",
        "done",
        'exec /usr/bin/rbd "$@"',
        "",
      ]
        .join("\n")
        .replace("FOREIGN", foreign),
    );
    chmodSync(wrapper, 0o755);
    s = await startScenario({ env: { PATH: `${bin}:${process.env.PATH ?? ""}` } });
    const made = await s.ceph.rbd(["create", "--size", "4", `${s.ceph.pool}/${foreign}`]);
    expect(made.code, made.stderr.toString()).to.equal(0);
  });
  after(async () => {
    await s?.stop();
    rmSync(bin, { recursive: true, force: true });
  });

  it("a foreign image put into the group between prepare and create: Failed StorageError (MembershipChanged), never Succeeded, nothing kept", async () => {
    const domain = await s.newDomain({ rbdDisks: 2 });
    await s.apply("raced-group", {}, domain.name);
    const done = await s.waitFinal("raced-group");
    expect(done.status!.phase, JSON.stringify(done.status)).to.equal("Failed");
    expect(done.status!.error?.reason).to.equal("StorageError");
    expect(done.status!.error?.message).to.match(/MembershipChanged/);
    expect(done.status!.error?.message).to.include(`${s.ceph.pool}/${foreign}`);
    expect(done.status!.thawedAt, "the guest was thawed before the check").to.be.a("string");
    expect(await s.groupSnapshots(domain.name), "the group snapshot was removed").to.deep.equal([]);
    const held = await s.ceph.rbd([
      "snap",
      "ls",
      "--all",
      "--format",
      "json",
      `${s.ceph.pool}/${foreign}`,
    ]);
    expect(
      JSON.parse(held.stdout.toString() || "[]"),
      "nothing left on the foreign image",
    ).to.deep.equal([]);
    expect(await s.host.isFrozen(domain.name)).to.equal(false);
  });
});
