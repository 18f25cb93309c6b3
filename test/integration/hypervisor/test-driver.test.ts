// The adapter against libvirt's test driver: every call goes through the real addon and the
// real libvirt library, and the error codes are the ones libvirt actually raises.
import { expect } from "chai";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";

import { Hypervisor } from "../../../src/hypervisor/connection.ts";
import { parseDisks } from "../../../src/hypervisor/disk-inventory.ts";
import { ErrorDomain } from "../../../src/hypervisor/error-codes.ts";
import { HypervisorError } from "../../../src/hypervisor/errors.ts";
import type { LifecycleEvent } from "../../../src/hypervisor/events.ts";
import { SnapshotCreateFlags, SnapshotDeleteFlags } from "../../../src/hypervisor/flags.ts";
import { openTestHost, RUNNING, SHUTOFF } from "./test-host.ts";

async function failure(promise: Promise<unknown>): Promise<HypervisorError> {
  const err = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err, "expected a rejection").to.be.instanceOf(HypervisorError);
  return err as HypervisorError;
}

const snapshotXml = (name: string) => `<domainsnapshot><name>${name}</name></domainsnapshot>`;

describe("hypervisor adapter on the libvirt test driver", function () {
  let hv: Hypervisor;

  beforeEach(async () => {
    hv = await openTestHost({ callTimeoutMs: 5000 });
  });
  afterEach(async () => {
    await hv.close();
  });

  describe("domains", () => {
    it("describes a running and a shut-off domain by name and by UUID", async () => {
      const running = await hv.domainInfo(RUNNING);
      expect(running).to.deep.include({
        name: RUNNING,
        uuid: "5b3c1f0e-8a7d-4d2c-9e61-0c4a7f1b2d10",
        state: "running",
        active: true,
      });
      expect(running.id).to.be.a("number");
      const off = await hv.domainInfoByUUID("7e9a2b4c-6d8f-4a1b-8c3d-5e7f9a1b3c20");
      expect(off).to.deep.include({
        name: SHUTOFF,
        state: "shutoff",
        active: false,
        id: undefined,
      });
      expect(await hv.isActive(SHUTOFF)).to.equal(false);
    });

    it("inventories the running domain's disks from its live XML: one rbd, one file", async () => {
      const disks = parseDisks(await hv.domainXml(RUNNING));
      expect(disks.map((d) => [d.target, d.plan.backend])).to.deep.equal([
        ["vda", "rbd"],
        ["vdb", "libvirt-file"],
      ]);
      const rbd = disks[0]?.plan;
      expect(rbd?.backend === "rbd" && rbd.rbd).to.deep.include({
        pool: "vms",
        image: "vmsnap-running-root",
      });
      expect(rbd?.backend === "rbd" && rbd.rbd.monitors).to.have.length(2);
    });

    it("surfaces code 42 as DomainNotFound", async () => {
      const err = await failure(hv.domainInfo("no-such-vm"));
      expect(err).to.include({
        reason: "DomainNotFound",
        code: 42,
        domain: ErrorDomain.Test,
        target: "no-such-vm",
      });
      expect(await failure(hv.fsFreeze("no-such-vm"))).to.include({
        reason: "DomainNotFound",
        code: 42,
      });
    });

    it("surfaces code 55 as DomainNotRunning when freezing a shut-off domain", async () => {
      const err = await failure(hv.fsFreeze(SHUTOFF));
      expect(err).to.include({
        reason: "DomainNotRunning",
        code: 55,
        domain: ErrorDomain.Domain,
        operation: "fsFreeze",
      });
    });

    it("suspends and resumes, and the state follows", async () => {
      await hv.suspend(RUNNING);
      expect((await hv.domainInfo(RUNNING)).state).to.equal("paused");
      await hv.resume(RUNNING);
      expect((await hv.domainInfo(RUNNING)).state).to.equal("running");
    });

    it("saves to a file and restores from it", async () => {
      const dir = mkdtempSync(join(tmpdir(), "vmsnap-save-"));
      try {
        const image = join(dir, "running.save");
        await hv.save(RUNNING, image);
        expect(existsSync(image)).to.equal(true);
        expect((await hv.domainInfo(RUNNING)).state).to.equal("shutoff");
        await hv.restore(image);
        expect((await hv.domainInfo(RUNNING)).state).to.equal("running");
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });
  });

  describe("guest filesystems", () => {
    it("freezes and thaws with counts: all filesystems, then none while frozen, then one", async () => {
      expect(await hv.fsFreeze(RUNNING)).to.equal(2);
      expect(await hv.fsFreeze(RUNNING), "already frozen: nothing more to freeze").to.equal(0);
      expect(await hv.fsThaw(RUNNING)).to.equal(2);
      expect(await hv.fsFreeze(RUNNING, ["/"])).to.equal(1);
      expect(await hv.fsThaw(RUNNING)).to.equal(1);
    });

    it("lists the guest's filesystems with their disks", async () => {
      const fs = await hv.fsInfo(RUNNING);
      expect(fs.map((f) => f.mountpoint)).to.deep.equal(["/", "/boot"]);
      expect(fs[0]).to.include({ fstype: "ext4" });
      expect(fs[0]?.disks).to.deep.equal(["vda"]);
    });

    it("reports the agent commands the test driver lacks as Unsupported (code 3)", async () => {
      expect(await failure(hv.freezeStatus(RUNNING))).to.include({
        reason: "Unsupported",
        code: 3,
      });
      expect(await failure(hv.guestPing(RUNNING))).to.include({ reason: "Unsupported", code: 3 });
      expect(await failure(hv.setAgentResponseTimeout(RUNNING, 5))).to.include({
        reason: "Unsupported",
        code: 3,
      });
    });
  });

  describe("snapshots", () => {
    it("creates snapshots with each flag the test driver supports, lists, reads and deletes them", async () => {
      const flags = {
        plain: 0,
        live: SnapshotCreateFlags.Live,
        atomic: SnapshotCreateFlags.Atomic,
        quiesce: SnapshotCreateFlags.Quiesce,
      };
      for (const [name, flag] of Object.entries(flags)) {
        expect(await hv.createSnapshot(RUNNING, snapshotXml(name), flag)).to.equal(name);
      }
      expect((await hv.listSnapshots(RUNNING)).sort()).to.deep.equal([
        "atomic",
        "live",
        "plain",
        "quiesce",
      ]);
      expect(await hv.snapshotXml(RUNNING, "live")).to.match(/<name>live<\/name>/);
      await hv.deleteSnapshot(RUNNING, "live");
      expect(await hv.listSnapshots(RUNNING)).to.not.include("live");
      const missing = await failure(hv.deleteSnapshot(RUNNING, "live"));
      expect(missing).to.include({ reason: "SnapshotNotFound", code: 72 });
    });

    it("deletes a snapshot with its children", async () => {
      await hv.createSnapshot(RUNNING, snapshotXml("parent"));
      await hv.createSnapshot(RUNNING, snapshotXml("child"));
      await hv.deleteSnapshot(RUNNING, "parent", SnapshotDeleteFlags.Children);
      expect(await hv.listSnapshots(RUNNING)).to.deep.equal([]);
    });

    it("HALT stops the domain after the snapshot", async () => {
      await hv.createSnapshot(RUNNING, snapshotXml("halted"), SnapshotCreateFlags.Halt);
      expect((await hv.domainInfo(RUNNING)).state).to.equal("shutoff");
    });

    it("accepts an external memory snapshot when every disk has snapshot='no'", async () => {
      const xml = `<domainsnapshot><name>mem</name><memory snapshot='external' file='/nonexistent/mem'/>
        <disks><disk name='vda' snapshot='no'/><disk name='vdb' snapshot='no'/></disks></domainsnapshot>`;
      expect(await hv.createSnapshot(RUNNING, xml)).to.equal("mem");
    });

    it("classifies the DISK_ONLY refusal (code 8, 'unsupported flags (0x10)') as Unsupported", async () => {
      const err = await failure(
        hv.createSnapshot(
          RUNNING,
          snapshotXml("d"),
          SnapshotCreateFlags.DiskOnly | SnapshotCreateFlags.Atomic,
        ),
      );
      expect(err).to.include({
        reason: "Unsupported",
        code: 8,
        domain: ErrorDomain.Test,
        operation: "createSnapshot",
      });
    });
  });

  describe("events", () => {
    it("delivers lifecycle events for suspend and resume, decoded", async () => {
      const events: LifecycleEvent[] = [];
      const off = await hv.onLifecycle((e) => events.push(e));
      await hv.suspend(RUNNING);
      await hv.resume(RUNNING);
      for (let i = 0; i < 100 && events.length < 2; i++) await sleep(10);
      await off();
      expect(events.map((e) => [e.domain, e.type])).to.deep.equal([
        [RUNNING, "suspended"],
        [RUNNING, "resumed"],
      ]);
      expect(events[0]?.uuid).to.equal("5b3c1f0e-8a7d-4d2c-9e61-0c4a7f1b2d10");
    });

    it("stops delivering once unsubscribed", async () => {
      const events: LifecycleEvent[] = [];
      const off = await hv.onLifecycle((e) => events.push(e));
      await off();
      await hv.suspend(RUNNING);
      await sleep(100);
      expect(events).to.deep.equal([]);
    });

    it("registers for agent lifecycle events (the test driver never emits any)", async () => {
      const off = await hv.onAgentLifecycle(() => {});
      await off();
    });
  });

  describe("connections", () => {
    it("gives each connection to a custom-XML host its own state", async () => {
      const other = await openTestHost();
      try {
        await hv.suspend(RUNNING);
        expect((await other.domainInfo(RUNNING)).state).to.equal("running");
      } finally {
        await other.close();
      }
    });

    it("fails calls after close with ConnectionLost", async () => {
      const other = await openTestHost();
      await other.close();
      expect(await failure(other.domainInfo(RUNNING))).to.include({ reason: "ConnectionLost" });
    });

    it("fails to open a daemon socket that doesn't exist at once, as ConnectionLost (38 from RPC)", async () => {
      const started = performance.now();
      const err = await failure(
        Hypervisor.open("qemu+unix:///system?socket=/tmp/vmsnap-no-such-daemon.sock"),
      );
      expect(performance.now() - started).to.be.below(1000);
      expect(err).to.include({
        reason: "ConnectionLost",
        code: 38,
        domain: ErrorDomain.Rpc,
        operation: "open",
      });
    });
  });
});
