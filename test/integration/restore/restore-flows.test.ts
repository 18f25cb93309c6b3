// VMRestore end to end on real parts: kube-apiserver + etcd, the real Ceph cluster and the
// libvirt test driver hosted by a daemon, with the agent as it ships. The disks-only restores run
// here (the test driver cannot load a QEMU memory image: test/e2e/restore-controller covers RAM).
import { expect } from "chai";
import type { VMRestore } from "../../../src/api/restore-types.ts";
import { startScenario, type Scenario } from "../../support/controller/snapshot-scenario.ts";
import { imageDigest, scribble as scribbleOn } from "../../support/ceph/image-content.ts";
import type { VMRestores } from "../../support/kube/vmrestores.ts";
import { scrape, sumOf } from "../../support/exposition.ts";
import { waitFor } from "../../support/processes.ts";

describe("VMRestore controller on real parts (test-driver libvirt, Ceph)", function () {
  this.timeout(180_000);
  let s: Scenario;
  let restores: VMRestores;

  before(async () => {
    s = await startScenario();
    restores = s.restores;
  });
  after(async () => {
    await s?.stop();
  });

  const contentOf = (image: string) => imageDigest(s.ceph, image);
  const scribble = (image: string) => scribbleOn(s.ceph, image);

  async function snapshotOf(domain: string, name: string) {
    await s.apply(name, {}, domain);
    const done = await s.waitFinal(name);
    expect(done.status?.phase, JSON.stringify(done.status?.error)).to.equal("Succeeded");
    return done;
  }

  const failure = (r: VMRestore) => r.status?.error;
  const ready = (r: VMRestore) => r.status?.conditions?.find((c) => c.type === "Ready");

  /** A persistent running domain, as real VMs are (the scenario's running ones are transient). */
  const persistentDomain = (rbdDisks: number) => s.newDomain({ rbdDisks, persistent: true });

  it("in place, disks only: stops the running domain, rolls both RBD disks back, starts it again", async () => {
    const domain = await persistentDomain(2);
    const before = await Promise.all(domain.images.map(contentOf));
    const snapshot = await snapshotOf(domain.name, "inplace-snap");
    for (const image of domain.images) await scribble(image);
    const scribbled = await Promise.all(domain.images.map(contentOf));
    expect(scribbled, "the writes changed the disks").to.not.deep.equal(before);

    const watch = await restores.watchPhases("inplace");
    await restores.apply("inplace", {
      snapshotName: "inplace-snap",
      target: { inPlace: {} },
      stopRunningTarget: true,
    });
    const done = await restores.waitFinal("inplace");
    watch.stop();
    expect(done.status?.phase, JSON.stringify(done.status?.error)).to.equal("Succeeded");
    expect(watch.phases).to.deep.equal(["Pending", "TargetStopped", "DisksRestored", "Succeeded"]);
    expect(
      await Promise.all(domain.images.map(contentOf)),
      "the disks hold the snapshot",
    ).to.deep.equal(before);
    const st = done.status!;
    expect(st).to.include({
      targetDomain: domain.name,
      node: s.nodeName,
      restoresMemory: false,
      memoryRestored: false,
      consistency: "ApplicationConsistent",
    });
    expect(st.restoredDisks!.map((d) => [d.target, d.method, d.from])).to.deep.equal(
      snapshot.status!.disks!.map((d) => [d.target, "Rollback", d.snapshot]),
    );
    expect(ready(done)?.status).to.equal("True");
    expect((await s.host.hypervisor().domainInfo(domain.name)).state).to.equal("running");
    // Done with it: the snapshot is no longer pinned and can go.
    expect((await s.get("inplace-snap")).metadata.finalizers ?? []).to.not.include(
      `vmsnap.io/restore-${done.metadata.uid}`,
    );
    await s.delete("inplace-snap");
  });

  it("a snapshot deleted mid-restore waits for it: the restore finishes, then the snapshot and its Ceph snapshot go", async () => {
    const domain = await persistentDomain(1);
    const before = await contentOf(domain.images[0]!);
    const snapshot = await snapshotOf(domain.name, "pinned-snap");
    await scribble(domain.images[0]!);
    let deleting: Promise<unknown> | undefined;
    const watch = await restores.watchFor(
      "pinned",
      (r) => r.status?.phase === "TargetStopped",
      () => {
        deleting = s.cp.kubectl([
          "delete",
          "vmsnap",
          "pinned-snap",
          "-n",
          s.namespace,
          "--wait=false",
        ]);
      },
    );
    await restores.apply("pinned", {
      snapshotName: "pinned-snap",
      target: { inPlace: {} },
      stopRunningTarget: true,
    });
    const done = await restores.waitFinal("pinned");
    watch.stop();
    await deleting;
    expect(done.status?.phase, JSON.stringify(done.status?.error)).to.equal("Succeeded");
    expect(await contentOf(domain.images[0]!), "restored from the snapshot").to.equal(before);
    const name = snapshot.status!.snapshotName!;
    await waitFor(
      "the snapshot to be gone",
      async () =>
        (await s.cp.kubectl(["get", "vmsnap", "pinned-snap", "-n", s.namespace])).code !== 0,
      30_000,
      200,
    );
    expect(await s.imageSnapshots(domain.images[0]!)).to.not.include(name);
  });

  it("to a new domain: copies the disks by snapshot id and defines a new domain; the source runs on untouched", async () => {
    const domain = await s.newDomain({ rbdDisks: 2 });
    const before = await Promise.all(domain.images.map(contentOf));
    await snapshotOf(domain.name, "copy-snap");
    for (const image of domain.images) await scribble(image);
    const sourceAfter = await Promise.all(domain.images.map(contentOf));

    const name = `${domain.name}-copy`;
    await restores.apply("copy", {
      snapshotName: "copy-snap",
      target: { newDomain: { name } },
      memory: "Skip",
    });
    const done = await restores.waitFinal("copy");
    expect(done.status?.phase, JSON.stringify(done.status?.error)).to.equal("Succeeded");
    const st = done.status!;
    expect(st.targetUUID).to.equal(done.metadata.uid);
    expect(st.restoredDisks!.map((d) => [d.method, d.source])).to.deep.equal(
      ["vda", "vdb"].map((t) => ["Copy", `${s.ceph.pool}/${name}-${t}`]),
    );
    const copies = st.restoredDisks!.map((d) => d.source.split("/")[1]!);
    expect(await Promise.all(copies.map(contentOf)), "the copies hold the snapshot").to.deep.equal(
      before,
    );
    expect(
      await Promise.all(domain.images.map(contentOf)),
      "the source is untouched",
    ).to.deep.equal(sourceAfter);
    const info = await s.host.hypervisor().domainInfo(name);
    expect(info.state).to.equal("running");
    expect(info.uuid).to.equal(done.metadata.uid);
    expect((await s.host.hypervisor().domainInfo(domain.name)).state).to.equal("running");
  });

  it("to a new domain once the source is gone: defined from the definition the snapshot kept in Ceph, which goes with the snapshot", async () => {
    const domain = await s.newDomain({ rbdDisks: 2 });
    const sourceXml = await s.host.hypervisor().domainXml(domain.name);
    const snapshot = await snapshotOf(domain.name, "kept-snap");
    const key = `vmsnap.definition.${snapshot.status!.snapshotName}`;
    const home = `${s.ceph.pool}/${domain.images[0]}`;
    expect(snapshot.status!.definition).to.deep.equal({
      backend: "rbd",
      location: `${home} image-meta ${key}`,
    });
    const metaKeys = async () => {
      const r = await s.ceph.rbd(["image-meta", "list", home, "--format", "json"]);
      expect(r.code, r.stderr).to.equal(0);
      return Object.keys(JSON.parse(r.stdout || "{}") as Record<string, string>);
    };
    expect(await metaKeys()).to.include(key);
    // The source goes away (a transient test domain is gone once destroyed): only the kept
    // definition can say what the VM was.
    await s.host.hypervisor().destroy(domain.name);

    const name = `${domain.name}-kept`;
    await restores.apply("kept", {
      snapshotName: "kept-snap",
      target: { newDomain: { name } },
      memory: "Skip",
    });
    const done = await restores.waitFinal("kept");
    expect(done.status?.phase, JSON.stringify(done.status?.error)).to.equal("Succeeded");
    const info = await s.host.hypervisor().domainInfo(name);
    expect(info.state).to.equal("running");
    const copyXml = await s.host.hypervisor().domainXml(name);
    const memoryOf = (xml: string) => /<memory[^>]*>(\d+)<\/memory>/.exec(xml)?.[1];
    expect(memoryOf(copyXml), "the copy has the source's RAM size").to.equal(memoryOf(sourceXml));
    for (const t of ["vda", "vdb"]) expect(copyXml).to.include(`${s.ceph.pool}/${name}-${t}`);

    await s.delete("kept-snap");
    await waitFor(
      "the snapshot to be gone",
      async () =>
        (await s.cp.kubectl(["get", "vmsnap", "kept-snap", "-n", s.namespace])).code !== 0,
      30_000,
      200,
    );
    expect(await metaKeys(), "the kept definition went with the snapshot").to.not.include(key);
  });

  describe("bad input: a clear Failed reason and nothing changed", () => {
    it("an unknown snapshot: SnapshotNotFound", async () => {
      await restores.apply("unknown", { snapshotName: "no-such-snap", target: { inPlace: {} } });
      const done = await restores.waitFinal("unknown");
      expect(done.status?.phase).to.equal("Failed");
      expect(failure(done)?.reason).to.equal("SnapshotNotFound");
      expect(failure(done)?.message).to.contain("no-such-snap");
      expect(ready(done)).to.include({ status: "False", reason: "SnapshotNotFound" });
    });

    it("a snapshot that failed: SnapshotNotReady", async () => {
      await s.apply("failed-snap", { quiesce: "Required" }, "vmsnap-no-such-domain");
      expect((await s.waitFinal("failed-snap")).status?.phase).to.equal("Failed");
      await restores.apply("not-ready", { snapshotName: "failed-snap", target: { inPlace: {} } });
      const done = await restores.waitFinal("not-ready");
      expect(failure(done)?.reason).to.equal("SnapshotNotReady");
    });

    it("a running target without permission to stop it: TargetRunning, the domain keeps running and its disks", async () => {
      const domain = await persistentDomain(1);
      await snapshotOf(domain.name, "running-snap");
      await scribble(domain.images[0]!);
      const current = await contentOf(domain.images[0]!);
      await restores.apply("running", { snapshotName: "running-snap", target: { inPlace: {} } });
      const done = await restores.waitFinal("running");
      expect(failure(done)?.reason).to.equal("TargetRunning");
      expect(failure(done)?.message).to.contain("stopRunningTarget");
      expect((await s.host.hypervisor().domainInfo(domain.name)).state).to.equal("running");
      expect(await contentOf(domain.images[0]!)).to.equal(current);
      // A failed restore lets go of its snapshot too.
      await s.delete("running-snap");
    });

    it("a transient target in place: TargetTransient (stopping it would delete it), left running", async () => {
      const domain = await s.newDomain({ rbdDisks: 1 });
      await snapshotOf(domain.name, "transient-snap");
      await restores.apply("transient", {
        snapshotName: "transient-snap",
        target: { inPlace: {} },
        stopRunningTarget: true,
      });
      const done = await restores.waitFinal("transient");
      expect(failure(done)?.reason).to.equal("TargetTransient");
      expect((await s.host.hypervisor().domainInfo(domain.name)).state).to.equal("running");
    });

    it("a restore while a snapshot of the domain is in flight: TargetBusy, the snapshot goes on", async () => {
      const domain = await persistentDomain(1);
      await snapshotOf(domain.name, "busy-old");
      // A second snapshot held in its frozen window: the OSD stops as its deadline is written.
      const stall = await s.watchFor(
        "busy-new",
        (o) => o.status?.freezeDeadline !== undefined,
        () => s.ceph.pauseOsd(),
      );
      const frozen = await s.watchFor("busy-new", (o) => o.status?.phase === "Frozen");
      try {
        await s.apply("busy-new", { freezeTimeout: "20s" }, domain.name);
        await frozen.seen;
        await restores.apply("busy", {
          snapshotName: "busy-old",
          target: { inPlace: {} },
          stopRunningTarget: true,
        });
        const done = await restores.waitFinal("busy");
        expect(failure(done)?.reason).to.equal("TargetBusy");
        expect((await s.host.hypervisor().domainInfo(domain.name)).state).to.equal("running");
      } finally {
        stall.stop();
        frozen.stop();
        s.ceph.resumeOsd();
      }
      expect((await s.waitFinal("busy-new")).status?.phase).to.equal("Succeeded");
    });

    it("a new domain whose name is taken: TargetExists, the other domain untouched", async () => {
      const domain = await s.newDomain({ rbdDisks: 1 });
      const other = await s.newDomain({ rbdDisks: 1, label: "taken" });
      await snapshotOf(domain.name, "taken-snap");
      await restores.apply("taken", {
        snapshotName: "taken-snap",
        target: { newDomain: { name: other.name } },
        memory: "Skip",
      });
      const done = await restores.waitFinal("taken");
      expect(failure(done)?.reason).to.equal("TargetExists");
      expect((await s.host.hypervisor().domainInfo(other.name)).state).to.equal("running");
    });
  });

  it("the API server refuses a new-domain restore with memory, naming the field", async () => {
    const manifest = {
      apiVersion: "vmsnap.io/v1alpha1",
      kind: "VMRestore",
      metadata: { name: "bad-memory", namespace: s.namespace },
      spec: { snapshotName: "x", target: { newDomain: { name: "y" } }, memory: "Restore" },
    };
    const r = await s.cp.kubectl(["apply", "-f", "-"], JSON.stringify(manifest));
    expect(r.code).to.not.equal(0);
    expect(r.stderr).to.contain("spec.memory");
  });
  // Last (mocha runs a suite's own tests before its nested suites): counts everything above.
  describe("metrics", () => {
    it("counts every finished restore by result and reason in its metrics", async () => {
      const samples = await scrape(`http://127.0.0.1:${s.controller.metricsPort}/metrics`);
      const count = (result: string, reason: string) =>
        sumOf(samples, "vmsnap_restores_total", { result, reason });
      // The tests above, in order: four restores succeeded, six were refused.
      expect(count("succeeded", "Succeeded")).to.equal(4);
      for (const reason of [
        "SnapshotNotFound",
        "SnapshotNotReady",
        "TargetRunning",
        "TargetTransient",
        "TargetBusy",
        "TargetExists",
      ])
        expect(count("failed", reason), reason).to.equal(1);
      expect(sumOf(samples, "vmsnap_restore_duration_seconds_count")).to.equal(4);
    });
  });
});
