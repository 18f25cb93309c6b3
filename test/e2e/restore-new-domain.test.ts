// A restore of a VM snapshot to a NEW domain on a real QEMU guest, asked for with a VMRestore,
// while the source keeps running: the agent copies the RBD disk from its snapshot by id (librbd)
// and the qcow2 disk from the snapshot's backing file, defines the domain from the memory image's
// XML with a new name and UUID (the restore's UID), and cold-boots it. Both then run, each on its
// own disks, and deleting the VMSnapshot afterwards leaves the copy running.
//
// Also pinned: the memory image itself cannot be restored under a new UUID (libvirt 9.0: code 67,
// "Target domain uuid … does not match source"), so a new domain is always a disks-only restore.
import { randomUUID } from "node:crypto";
import { rmSync } from "node:fs";
import { join } from "node:path";
import { expect } from "chai";
import type { VMSnapshot } from "../../src/api/types.ts";
import { Hypervisor } from "../../src/hypervisor/connection.ts";
import { HypervisorError } from "../../src/hypervisor/errors.ts";
import { DomainXmlFlags, SaveRestoreFlags } from "../../src/hypervisor/flags.ts";
import { restoreDomainXml } from "../../src/hypervisor/restore-xml.ts";
import { createRbdRunner } from "../../src/storage/rbd/runner.ts";
import { removeRestoredImage } from "../../src/storage/rbd/snapshot-copy.ts";
import { parseImagePath } from "../../src/storage/rbd/snapshot-ref.ts";
import type { VMRestore } from "../../src/api/restore-types.ts";
import { vmrestoresIn, type VMRestores } from "../support/kube/vmrestores.ts";
import { rbdConfigFor } from "../support/ceph/fixtures.ts";
import { useE2eController, type E2eController } from "../support/e2e/controller.ts";
import {
  checkExt4,
  checkSnapshotOfDisk,
  describeExt4,
  exportRbdSnapshot,
  qcow2ToRaw,
} from "../support/e2e/ext4.ts";
import { lastSeq, waitForSeq } from "../support/e2e/writer.ts";
import {
  createRbdGuestDisk,
  guestImage,
  launchGuest,
  readConsole,
  writerRecords,
  type Guest,
} from "../support/guest/index.ts";
import { domainState, removeDomain, SYSTEM_URI, virsh } from "../support/libvirt/libvirtd.ts";

const DISKS = ["vda", "vdb"] as const;

describe("restore of a VM snapshot to a new domain while the source runs (qcow2 + RBD disks)", function () {
  this.timeout(180_000);
  let e2e: E2eController;
  let guest: Guest;
  let hv: Hypervisor;
  let snapshot: VMSnapshot;
  let xml: string;
  const snapshotSeq: Record<string, number> = {};
  const copies: { pool: string; image: string }[] = [];
  const copyName = () => `${guest.name}-copy`;
  let restores: VMRestores;
  let restored: VMRestore;
  const parseImage = (source: string) => parseImagePath(source, "restored disk");

  before(async function () {
    this.timeout(600_000);
    await guestImage();
    e2e = await useE2eController();
    const rbd = await createRbdGuestDisk(e2e.ceph);
    guest = await launchGuest({ label: "newdom", fileDisks: 1, rbdDisks: [rbd] });
    await guest.waitForAgent(120_000);
    for (const disk of DISKS) await waitForSeq(guest, disk, 3);
    hv = await Hypervisor.open(SYSTEM_URI, { callTimeoutMs: 60_000 });
    restores = vmrestoresIn({
      cp: e2e.cp,
      namespace: e2e.namespace,
      controllerLog: () => e2e.controller.log(),
    });
    await e2e.apply("vm-copy", { memory: true, quiesce: "Required" }, guest.name);
    snapshot = await e2e.waitFinal("vm-copy");
    expect(snapshot.status?.phase, JSON.stringify(snapshot.status?.error)).to.equal("Succeeded");
    for (const handle of snapshot.status!.disks!) {
      const check = await checkSnapshotOfDisk(e2e.ceph, handle, guest.workDir);
      snapshotSeq[handle.target] = check.writerLog.at(-1)!.seq;
    }
  });

  after(async () => {
    await removeDomain(copyName()).catch(() => undefined);
    const runner = createRbdRunner(rbdConfigFor(e2e.ceph));
    for (const image of copies) await removeRestoredImage(runner, image).catch(() => undefined);
    await hv?.close();
    await guest?.remove();
  });

  it("a VMRestore copies both disks from the snapshot while the source writes on, and defines the copy", async () => {
    await restores.apply("vm-copy-back", {
      snapshotName: "vm-copy",
      target: { newDomain: { name: copyName() } },
      memory: "Skip",
    });
    restored = await restores.waitFinal("vm-copy-back", 120_000);
    expect(restored.status?.phase, JSON.stringify(restored.status?.error)).to.equal("Succeeded");
    const st = restored.status!;
    expect(st).to.include({ targetDomain: copyName(), targetUUID: restored.metadata.uid });
    expect(st.restoredDisks!.map((d) => d.method)).to.deep.equal(["Copy", "Copy"]);
    for (const d of st.restoredDisks!) if (d.backend === "rbd") copies.push(parseImage(d.source));
    console.log(
      `      VMRestore to ${copyName()}: start -> Succeeded ${Date.parse(st.completionTime!) - Date.parse(st.startTime!)} ms; ` +
        st.restoredDisks!.map((d) => `${d.target} -> ${d.source}`).join(", "),
    );
    // The memory image's XML with the copy's identity, for the libvirt fact below.
    const imageXml = await hv.saveImageXml(snapshot.status!.memory!.file, {
      flags: DomainXmlFlags.Secure,
    });
    xml = restoreDomainXml(imageXml, {
      disks: st.restoredDisks!.map((d) => ({
        target: d.target,
        source:
          d.backend === "rbd"
            ? { kind: "rbd", ...parseImage(d.source) }
            : { kind: "file", path: d.source },
      })),
      identity: { name: `${copyName()}-probe`, uuid: randomUUID() },
    });
    expect(await domainState(guest.name)).to.equal("running");
  });

  it("cannot restore the memory image under the new UUID (code 67): a new domain boots from its disks", async () => {
    const err = await hv
      .restore(snapshot.status!.memory!.file, { xml, flags: SaveRestoreFlags.Paused })
      .catch((e: unknown) => e);
    expect(err).to.be.instanceOf(HypervisorError);
    expect((err as HypervisorError).code, String(err)).to.equal(67);
    expect(String(err)).to.contain("does not match source");
  });

  it("the copy runs; both run, each writing on its own disks from where it is", async () => {
    const blk = await virsh(["domblklist", copyName()]);
    for (const d of restored.status!.restoredDisks!) {
      expect(blk).to.contain(d.backend === "rbd" ? parseImage(d.source).image : d.source);
    }
    const sourceSeq = Object.fromEntries(DISKS.map((d) => [d, lastSeq(guest, d)]));
    // The copy's console logs to its own file (restoreDomainXml renames it).
    const consolePath = `${guest.consoleLog}.${copyName()}`;
    for (const disk of DISKS) {
      let records = writerRecords(readConsole(consolePath), disk);
      for (let i = 0; i < 600 && records.length < 2; i++) {
        await new Promise((r) => setTimeout(r, 200));
        records = writerRecords(readConsole(consolePath), disk);
      }
      // The guest's writer continues the sequence it finds in its log: the snapshot's.
      expect(records[0]?.seq, `${disk} of the copy`).to.equal(snapshotSeq[disk]! + 1);
      await waitForSeq(guest, disk, sourceSeq[disk]! + 2);
      console.log(
        `      ${disk}: copy continues at seq ${records[0]!.seq} (snapshot ${snapshotSeq[disk]}); source at ${lastSeq(guest, disk)}`,
      );
    }
    expect(await domainState(guest.name)).to.equal("running");
    expect(await domainState(copyName())).to.equal("running");
  });

  it("a disks-only restore of the quiesced snapshot, left Stopped, has clean filesystems that need no journal replay", async () => {
    const cold = `${guest.name}-cold`;
    await restores.apply("vm-copy-cold", {
      snapshotName: "vm-copy",
      target: { newDomain: { name: cold } },
      memory: "Skip",
      powerState: "Stopped",
    });
    const done = await restores.waitFinal("vm-copy-cold", 120_000);
    try {
      expect(done.status?.phase, JSON.stringify(done.status?.error)).to.equal("Succeeded");
      expect(done.status?.consistency).to.equal("ApplicationConsistent");
      expect(await domainState(cold)).to.equal("shut off");
      for (const d of done.status!.restoredDisks!) {
        if (d.backend === "rbd") copies.push(parseImage(d.source));
        const raw = join(guest.workDir, `${d.target}.cold.raw`);
        try {
          if (d.backend === "rbd") await exportRbdSnapshot(e2e.ceph, d.source, raw);
          else await qcow2ToRaw(d.source, raw);
          const check = await checkExt4(raw);
          console.log(`      ${describeExt4(`cold copy ${d.target}`, check)}`);
          expect(check.fsckClean, `${d.target}: e2fsck -fn\n${check.fsckOutput}`).to.equal(true);
          expect(check.needsRecovery, `${d.target}: needs_recovery`).to.equal(false);
          expect(check.writerLog.at(-1)?.seq, d.target).to.equal(snapshotSeq[d.target]);
        } finally {
          rmSync(raw, { force: true });
        }
      }
    } finally {
      await removeDomain(cold).catch(() => undefined);
    }
  });

  it("deleting the VMSnapshot afterwards leaves the copy running on its own disks", async () => {
    await e2e.delete("vm-copy");
    expect(await domainState(copyName())).to.equal("running");
    expect(await domainState(guest.name)).to.equal("running");
  });
});
