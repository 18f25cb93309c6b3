// The safety promise where nobody looked (issue 12), on real parts: kube-apiserver + etcd, a
// real Ceph cluster and the libvirt test driver hosted by a daemon, so a freeze made by someone
// else is visible to the controller exactly as an administrator's `virsh domfsfreeze` would be.
import { chmodSync, existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { expect } from "chai";
import type { VMSnapshot } from "../../../src/api/types.ts";
import { startScenario, type Scenario } from "../../support/controller/snapshot-scenario.ts";
import { waitFor } from "../../support/processes.ts";

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

describe("safety: deleting a snapshot never pulls the RBD group from under a new one of the same domain", function () {
  this.timeout(180_000);
  let s: Scenario;
  let bin: string;
  let hold: string;
  let held: string;
  let release: string;

  // The controller's `rbd`, wrapped: while the file `hold` exists, a `group snap create` waits
  // (after prepare made the group and its members, inside the frozen window) until `release`
  // appears, and says it is waiting by creating `held`.
  before(async () => {
    bin = mkdtempSync(join(tmpdir(), "vmsnap-rbd-hold-"));
    hold = join(bin, "hold");
    held = join(bin, "held");
    release = join(bin, "release");
    const wrapper = join(bin, "rbd");
    writeFileSync(
      wrapper,
      [
        "#!/bin/bash",
        'args=" $* "',
        `if [ -e ${hold} ] && [[ "$args" == *" group snap create "* ]]; then`,
        `  touch ${held}`,
        `  for ((n = 0; n < 400; n++)); do [ -e ${release} ] && break; sleep 0.05; done`,
        "fi",
        'exec /usr/bin/rbd "$@"',
        "",
      ].join("\n"),
    );
    chmodSync(wrapper, 0o755);
    s = await startScenario({ env: { PATH: `${bin}:${process.env.PATH ?? ""}` } });
  });
  after(async () => {
    await s?.stop();
    rmSync(bin, { recursive: true, force: true });
  });

  it("the old snapshot's deletion waits for the domain while a new one is between prepare and create; both end as asked", async () => {
    const domain = await s.newDomain({ rbdDisks: 2 });
    await s.apply("old", {}, domain.name);
    const old = await s.waitFinal("old");
    expect(old.status!.phase, JSON.stringify(old.status?.error)).to.equal("Succeeded");

    writeFileSync(hold, "");
    await s.apply("new", { freezeTimeout: "30s" }, domain.name);
    await waitFor(
      "the new snapshot's group snapshot to be held",
      async () => existsSync(held),
      30_000,
      50,
    );
    // Retention (or a person) deletes the old one now: its removal would find the group without
    // snapshots and remove it, members and all, before the new one's create.
    const deleting = s.cp.kubectl(["delete", "vmsnap", "old", "-n", s.namespace, "--wait=false"]);
    expect((await deleting).code).to.equal(0);
    await sleep(3_000);
    expect(
      (await s.get("old")).metadata.deletionTimestamp,
      "the deletion waits while the new snapshot holds the domain",
    ).to.be.a("string");
    expect(await s.groupSnapshots(domain.name), "the old snapshot is still there").to.deep.equal([
      old.status!.snapshotName,
    ]);

    writeFileSync(release, "");
    const fresh = await s.waitFinal("new");
    expect(fresh.status!.phase, JSON.stringify(fresh.status?.error)).to.equal("Succeeded");
    await waitFor(
      "the old snapshot to be gone",
      async () => (await s.cp.kubectl(["get", "vmsnap", "old", "-n", s.namespace])).code !== 0,
      30_000,
      200,
    );
    expect(await s.groupSnapshots(domain.name), "only the new snapshot remains").to.deep.equal([
      fresh.status!.snapshotName,
    ]);
    expect(await s.host.isFrozen(domain.name)).to.equal(false);
  });
});
