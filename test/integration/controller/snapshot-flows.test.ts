// The controller end to end on real parts: kube-apiserver + etcd, a real Ceph cluster, and the
// libvirt test driver hosted by a daemon (so the guest's frozen state is visible to the test).
// Each test applies VMSnapshots with kubectl and checks what a user and Ceph would see.
import { expect } from "chai";
import type { VMSnapshot } from "../../../src/api/types.ts";
import { startScenario, type Scenario } from "../../support/controller/snapshot-scenario.ts";

describe("VMSnapshot controller on real parts", function () {
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

  describe("disk snapshot of a running domain", () => {
    it("goes Pending → Frozen → DisksSnapshotted → Thawed → Succeeded and takes one Ceph group snapshot", async () => {
      const domain = await s.newDomain({ rbdDisks: 2 });
      const watcher = await s.watchPhases("disk-1");
      await s.apply("disk-1", {}, domain.name);
      const done = await s.waitFinal("disk-1");
      await watcher.stopAfter(done.status!.phase!);
      expect(watcher.phases).to.deep.equal([
        "Pending",
        "Frozen",
        "DisksSnapshotted",
        "Thawed",
        "Succeeded",
      ]);

      const st = done.status!;
      const name = `vmsnap-${done.metadata.uid}`;
      expect(st.snapshotName).to.equal(name);
      expect(await s.groupSnapshots(domain.name)).to.deep.equal([name]);
      expect(st.disks!.map((d) => d.target)).to.deep.equal(["vda", "vdb"]);
      for (const disk of st.disks!) {
        expect(disk.backend).to.equal("rbd");
        expect(disk.snapshot).to.match(new RegExp(`@${name}$`));
      }
      expect(st.readyToUse).to.equal(true);
      expect(st.freezeDurationMs).to.be.a("number").and.at.least(0);
      expect(Date.parse(st.thawedAt!) - Date.parse(st.frozenAt!)).to.equal(st.freezeDurationMs);
      expect(Date.parse(st.thawedAt!)).to.be.at.most(Date.parse(st.freezeDeadline!));
      expect(st.indications).to.deep.equal(["Online", "GuestAgent", "Quiesced"]);
      expect(st.domainUUID, "the identity every thaw checks").to.equal(
        (await s.host.hypervisor().domainInfo(domain.name)).uuid,
      );
      expect(condition(done, "Ready")?.status).to.equal("True");
      expect(condition(done, "Quiesced")?.status).to.equal("True");
      expect(condition(done, "Stalled")?.status).to.equal("False");
      expect(st.observedGeneration).to.equal(done.metadata.generation);
      expect(done.metadata.finalizers).to.include("vmsnap.io/artefacts");
      expect(await s.host.isFrozen(domain.name), "the guest is thawed").to.equal(false);
    });

    it("`kubectl wait --for=condition=Ready` returns once it succeeded", async () => {
      const domain = await s.newDomain({ rbdDisks: 1 });
      await s.apply("disk-wait", {}, domain.name);
      const waited = await s.cp.kubectl([
        "wait",
        "--for=condition=Ready",
        "--timeout=60s",
        "-n",
        s.namespace,
        "vmsnap/disk-wait",
      ]);
      expect(waited.code, waited.stderr).to.equal(0);
      const done = await s.get("disk-wait");
      // One disk: a plain image snapshot, no group needed.
      expect(await s.imageSnapshots(domain.images[0]!)).to.include(`vmsnap-${done.metadata.uid}`);
    });

    it("records one Event per transition", async () => {
      const domain = await s.newDomain({ rbdDisks: 1 });
      await s.apply("disk-events", {}, domain.name);
      const done = await s.waitFinal("disk-events");
      const events = await s.cp.kubectl([
        "get",
        "events.events.k8s.io",
        "-n",
        s.namespace,
        "-o",
        "json",
        "--field-selector",
        `regarding.name=disk-events`,
      ]);
      const reasons = (
        JSON.parse(events.stdout).items as Array<{ reason: string; eventTime: string }>
      )
        .sort((a, b) => a.eventTime.localeCompare(b.eventTime))
        .map((e) => e.reason);
      expect(reasons).to.deep.equal(["Frozen", "DisksSnapshotted", "Thawed", "Succeeded"]);
      expect(done.status?.phase).to.equal("Succeeded");
    });
  });

  describe("VM snapshot with memory", () => {
    it("adds MemorySaved, records the downtime, and leaves the guest running and thawed", async () => {
      const domain = await s.newDomain({ rbdDisks: 2 });
      const watcher = await s.watchPhases("vm-1");
      await s.apply("vm-1", { memory: true, quiesce: "Required" }, domain.name);
      const done = await s.waitFinal("vm-1");
      await watcher.stopAfter(done.status!.phase!);
      expect(watcher.phases).to.deep.equal([
        "Pending",
        "Frozen",
        "DisksSnapshotted",
        "MemorySaved",
        "Thawed",
        "Succeeded",
      ]);
      const st = done.status!;
      expect(st.downtimeMs).to.be.a("number").and.at.least(0);
      expect(st.memory?.file).to.equal(`${s.controller.memoryDir}/vmsnap-${done.metadata.uid}.mem`);
      expect(await s.groupSnapshots(domain.name)).to.deep.equal([`vmsnap-${done.metadata.uid}`]);
      expect(await s.host.domainState(domain.name)).to.equal("running");
      expect(await s.host.isFrozen(domain.name)).to.equal(false);
    });
  });

  describe("when the guest agent is unavailable, the policy decides and status says so", () => {
    it("Required: Failed with GuestAgentUnavailable, nothing left in Ceph", async () => {
      const domain = await s.newDomain({ rbdDisks: 2, guestAgent: false });
      await s.apply("agent-required", { quiesce: "Required" }, domain.name);
      const done = await s.waitFinal("agent-required");
      expect(done.status?.phase).to.equal("Failed");
      expect(done.status?.error?.reason).to.equal("GuestAgentUnavailable");
      expect(done.status?.error?.message).to.include("guest-agent channel");
      expect(condition(done, "Stalled")?.status).to.equal("True");
      expect(await s.groupSnapshots(domain.name)).to.deep.equal([]);
    });

    it("IfAvailable: Succeeded crash-consistent, Quiesced=False, indication NoGuestAgent, no Frozen/Thawed claimed", async () => {
      const domain = await s.newDomain({ rbdDisks: 2, guestAgent: false });
      const watcher = await s.watchPhases("agent-ifavailable");
      await s.apply("agent-ifavailable", { quiesce: "IfAvailable" }, domain.name);
      const done = await s.waitFinal("agent-ifavailable");
      await watcher.stopAfter(done.status!.phase!);
      expect(watcher.phases).to.deep.equal(["Pending", "DisksSnapshotted", "Succeeded"]);
      expect(condition(done, "Quiesced")).to.include({ status: "False", reason: "NoGuestAgent" });
      expect(condition(done, "Ready")?.message).to.include("crash-consistent");
      expect(done.status?.indications).to.deep.equal(["Online", "NoGuestAgent", "Unquiesced"]);
      expect(done.status?.frozenAt).to.equal(undefined);
      expect(await s.groupSnapshots(domain.name)).to.deep.equal([`vmsnap-${done.metadata.uid}`]);
    });

    it("Disabled: never freezes even with an agent, and says so", async () => {
      const domain = await s.newDomain({ rbdDisks: 1, guestAgent: true });
      await s.apply("agent-disabled", { quiesce: "Disabled" }, domain.name);
      const done = await s.waitFinal("agent-disabled");
      expect(done.status?.phase).to.equal("Succeeded");
      expect(condition(done, "Quiesced")).to.include({
        status: "False",
        reason: "QuiesceDisabled",
      });
      expect(done.status?.frozenAt).to.equal(undefined);
    });
  });

  describe("bad runtime input ends Failed with a reason", () => {
    it("an unknown domain: Forbidden, as a domain of someone else's (tenancy reveals no existence)", async () => {
      await s.apply("no-such-domain", {}, "vmsnap-does-not-exist");
      const done = await s.waitFinal("no-such-domain");
      expect(done.status?.phase).to.equal("Failed");
      expect(done.status?.error?.reason).to.equal("Forbidden");
    });

    const blockDisk = `    <disk type='block' device='disk'><source dev='/dev/vmsnap-none'/><target dev='vdz' bus='virtio'/></disk>`;

    it("an unsupported disk not excluded: UnsupportedDisk naming the disk and the way out", async () => {
      const domain = await s.newDomain({ rbdDisks: 1, extraDisksXml: blockDisk });
      await s.apply("unsupported", {}, domain.name);
      const done = await s.waitFinal("unsupported");
      expect(done.status?.error?.reason).to.equal("UnsupportedDisk");
      expect(done.status?.error?.message).to.include("vdz").and.include("spec.disks.exclude");
      expect(await s.imageSnapshots(domain.images[0]!)).to.deep.equal([]);
    });

    it("the same disk excluded: Succeeded with the others, excludedDisks in status", async () => {
      const domain = await s.newDomain({ rbdDisks: 1, extraDisksXml: blockDisk });
      await s.apply("excluded", { disks: { exclude: ["vdz"] } }, domain.name);
      const done = await s.waitFinal("excluded");
      expect(done.status?.phase).to.equal("Succeeded");
      expect(done.status?.excludedDisks).to.deep.equal(["vdz"]);
      expect(done.status?.disks?.map((d) => d.target)).to.deep.equal(["vda"]);
    });
  });

  describe("paused and shut-off domains: no freeze, and status says why", () => {
    it("a paused domain: Succeeded unquiesced (DomainPaused), left paused", async () => {
      const domain = await s.newDomain({ rbdDisks: 1, state: "paused" });
      await s.apply("paused-disk", {}, domain.name);
      const done = await s.waitFinal("paused-disk");
      expect(done.status?.phase).to.equal("Succeeded");
      expect(condition(done, "Quiesced")).to.include({ status: "False", reason: "DomainPaused" });
      expect(done.status?.indications).to.include("Paused");
      expect(await s.host.domainState(domain.name)).to.equal("paused");
    });

    it("a paused domain under quiesce Required: Failed, GuestAgentUnavailable", async () => {
      const domain = await s.newDomain({ rbdDisks: 1, state: "paused" });
      await s.apply("paused-required", { quiesce: "Required" }, domain.name);
      const done = await s.waitFinal("paused-required");
      expect(done.status?.error?.reason).to.equal("GuestAgentUnavailable");
      expect(done.status?.error?.message).to.include("paused");
    });

    it("a shut-off domain: a disk snapshot Succeeds (disks at rest), Offline", async () => {
      const domain = await s.newDomain({ rbdDisks: 2, state: "shutoff" });
      await s.apply("off-disk", { quiesce: "Required" }, domain.name);
      const done = await s.waitFinal("off-disk");
      expect(done.status?.phase).to.equal("Succeeded");
      expect(condition(done, "Quiesced")).to.include({ status: "False", reason: "DomainOffline" });
      expect(condition(done, "Ready")?.message).to.include("shut off");
      expect(await s.groupSnapshots(domain.name)).to.deep.equal([`vmsnap-${done.metadata.uid}`]);
    });

    it("a shut-off domain: a memory snapshot Fails with MemorySnapshotOfOfflineDomain, nothing taken", async () => {
      const domain = await s.newDomain({ rbdDisks: 2, state: "shutoff" });
      await s.apply("off-memory", { memory: true }, domain.name);
      const done = await s.waitFinal("off-memory");
      expect(done.status?.error?.reason).to.equal("MemorySnapshotOfOfflineDomain");
      expect(await s.groupSnapshots(domain.name)).to.deep.equal([]);
    });
  });

  it("serializes two snapshots of one domain: their frozen windows never overlap", async () => {
    const domain = await s.newDomain({ rbdDisks: 2 });
    await Promise.all([s.apply("serial-a", {}, domain.name), s.apply("serial-b", {}, domain.name)]);
    const [a, b] = await Promise.all([s.waitFinal("serial-a"), s.waitFinal("serial-b")]);
    for (const done of [a, b]) expect(done.status?.phase).to.equal("Succeeded");
    const [first, second] = [a, b].sort(
      (x, y) => Date.parse(x.status!.frozenAt!) - Date.parse(y.status!.frozenAt!),
    );
    expect(Date.parse(second!.status!.frozenAt!)).to.be.at.least(
      Date.parse(first!.status!.thawedAt!),
    );
    expect((await s.groupSnapshots(domain.name)).sort()).to.deep.equal(
      [`vmsnap-${a.metadata.uid}`, `vmsnap-${b.metadata.uid}`].sort(),
    );
  });

  describe("deletion", () => {
    it("deletionPolicy Delete removes the Ceph snapshot with the resource", async () => {
      const domain = await s.newDomain({ rbdDisks: 2 });
      await s.apply("del-delete", { deletionPolicy: "Delete" }, domain.name);
      expect((await s.waitFinal("del-delete")).status?.phase).to.equal("Succeeded");
      expect(await s.groupSnapshots(domain.name)).to.have.length(1);
      const deleted = await s.cp.kubectl([
        "delete",
        "vmsnap",
        "del-delete",
        "-n",
        s.namespace,
        "--timeout=60s",
      ]);
      expect(deleted.code, deleted.stderr).to.equal(0);
      expect(await s.groupSnapshots(domain.name)).to.deep.equal([]);
    });

    it("deletionPolicy Retain keeps it", async () => {
      const domain = await s.newDomain({ rbdDisks: 2 });
      await s.apply("del-retain", { deletionPolicy: "Retain" }, domain.name);
      const done = await s.waitFinal("del-retain");
      const deleted = await s.cp.kubectl([
        "delete",
        "vmsnap",
        "del-retain",
        "-n",
        s.namespace,
        "--timeout=60s",
      ]);
      expect(deleted.code, deleted.stderr).to.equal(0);
      expect(await s.groupSnapshots(domain.name)).to.deep.equal([`vmsnap-${done.metadata.uid}`]);
    });
  });
});

describe("per-host cap on frozen guests", function () {
  this.timeout(180_000);
  let s: Scenario;
  before(async () => {
    s = await startScenario({ maxFrozenGuests: 1 });
  });
  after(async () => {
    await s?.stop();
  });

  it("with a cap of 1, snapshots of different domains never overlap their frozen windows", async () => {
    const domains = await Promise.all(
      [1, 2, 3].map(() => s.newDomain({ rbdDisks: 2, label: "cap" })),
    );
    await Promise.all(domains.map((d, i) => s.apply(`cap-${i}`, {}, d.name)));
    const done = await Promise.all(domains.map((_, i) => s.waitFinal(`cap-${i}`)));
    expect(done.map((d) => d.status?.phase)).to.deep.equal(["Succeeded", "Succeeded", "Succeeded"]);
    const windows = done
      .map((d) => [Date.parse(d.status!.frozenAt!), Date.parse(d.status!.thawedAt!)] as const)
      .sort((a, b) => a[0] - b[0]);
    for (let i = 1; i < windows.length; i++)
      expect(windows[i]![0]).to.be.at.least(windows[i - 1]![1]);
  });
});

describe("graceful shutdown", function () {
  this.timeout(180_000);
  let s: Scenario;
  before(async () => {
    s = await startScenario({ cephOpTimeoutSeconds: 2 });
  });
  after(async () => {
    s?.ceph.resumeOsd();
    await s?.stop();
  });

  it("SIGTERM: the snapshot in flight ends and its guest is thawed; a new one waits for the next agent", async () => {
    const busy = await s.newDomain({ rbdDisks: 2, label: "term" });
    const stall = await s.watchFor(
      "term-busy",
      (o) => o.status?.freezeDeadline !== undefined,
      () => s.ceph.pauseOsd(),
    );
    try {
      await s.apply("term-busy", { freezeTimeout: "10s" }, busy.name);
      await stall.seen;
      const stopping = s.controller.stop("SIGTERM");
      await stopping;
      const inFlight = await s.get("term-busy");
      expect(["Succeeded", "Failed"], "the in-flight snapshot finished before exit").to.include(
        inFlight.status?.phase,
      );
      expect(await s.host.isFrozen(busy.name)).to.equal(false);
    } finally {
      stall.stop();
      s.ceph.resumeOsd();
    }
    const later = await s.newDomain({ rbdDisks: 1, label: "term" });
    await s.apply("term-later", {}, later.name);
    await s.startController({ cephOpTimeoutSeconds: 2 });
    expect((await s.waitFinal("term-later")).status?.phase).to.equal("Succeeded");
  });
});
