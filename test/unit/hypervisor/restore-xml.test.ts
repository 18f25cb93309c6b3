// The domain XML of a restore: disks pointed at the restored images, the live XML's per-run
// details dropped, and for a new domain a new name, UUID and (on request) MACs — everything else
// left in place, because libvirt compares a restore's devices with the memory image's in order.
import { readFileSync } from "node:fs";
import { expect } from "chai";
import { parseDisks } from "../../../src/hypervisor/disk-inventory.ts";
import { macFromSeed, restoreDomainXml } from "../../../src/hypervisor/restore-xml.ts";

const live = readFileSync(
  new URL("../../fixtures/domains/live-restore.xml", import.meta.url),
  "utf8",
);
const overlay = "/var/lib/vms/vda.qcow2.vmrestore-9.qcow2";
const inPlace = {
  disks: [
    { target: "vda", source: { kind: "file" as const, path: overlay } },
    { target: "vdb", source: { kind: "rbd" as const, pool: "vms", image: "web-data" } },
  ],
};

describe("restore domain XML", () => {
  describe("in place", () => {
    it("points a file disk at its new qcow2 overlay and forgets the old backing chain", () => {
      const xml = restoreDomainXml(live, inPlace);
      const vda = parseDisks(xml).find((d) => d.target === "vda")!;
      expect(vda.plan).to.deep.include({ backend: "libvirt-file" });
      expect(vda.plan.backend === "libvirt-file" && vda.plan.file.path).to.equal(overlay);
      expect(xml).not.to.contain("backingStore");
      expect(xml).not.to.contain("vda.qcow2.vmsnap-1.qcow2");
    });

    it("points an RBD disk at the given image, keeping its monitors and auth", () => {
      const xml = restoreDomainXml(live, {
        disks: [
          { target: "vdb", source: { kind: "rbd", pool: "vms", namespace: "t1", image: "copy" } },
        ],
      });
      const vdb = parseDisks(xml).find((d) => d.target === "vdb")!;
      expect(vdb.plan).to.deep.include({
        backend: "rbd",
        rbd: {
          pool: "vms",
          namespace: "t1",
          image: "copy",
          monitors: [{ host: "127.0.0.1", port: 6789 }],
          auth: { username: "vmsnap", secretUuid: "0f9b3f0e-36c5-4a9b-93f6-1d2f9d1c7a10" },
        },
      });
    });

    it("drops what belongs to the running instance: domain id, source index, dynamic seclabel, pty path, agent socket path", () => {
      const xml = restoreDomainXml(live, inPlace);
      expect(xml).not.to.match(/<domain[^>]* id=/);
      expect(xml).not.to.match(/<source[^>]* index=/);
      expect(xml).not.to.contain("<seclabel");
      expect(xml).not.to.contain('"/dev/pts/3"');
      expect(xml).not.to.contain("domain-7-web");
      expect(xml).to.contain('name="org.qemu.guest_agent.0"');
    });

    it("keeps name, UUID, MAC and the devices' order", () => {
      const xml = restoreDomainXml(live, inPlace);
      expect(xml).to.contain("<name>web</name>");
      expect(xml).to.contain("af90a77a-81bf-4f33-8431-1aa7ae3b251f");
      expect(xml).to.contain("52:54:00:12:34:56");
      const order = [
        ...xml.matchAll(/<(disk|interface|serial|console|channel|memballoon)[ >]/g),
      ].map((m) => m[1]);
      expect(order).to.deep.equal([
        "disk",
        "disk",
        "interface",
        "serial",
        "console",
        "channel",
        "memballoon",
      ]);
    });

    it("refuses a disk the XML does not have, and a file image for an RBD disk", () => {
      expect(() =>
        restoreDomainXml(live, {
          disks: [{ target: "vdz", source: { kind: "file", path: overlay } }],
        }),
      ).to.throw(/no disk vdz/);
      expect(() =>
        restoreDomainXml(live, {
          disks: [{ target: "vdb", source: { kind: "file", path: overlay } }],
        }),
      ).to.throw(/vdb is a network disk/);
    });

    it("refuses something that is not a domain", () => {
      expect(() => restoreDomainXml("<domainsnapshot/>", inPlace)).to.throw(/no <domain>/);
    });
  });

  describe("as a new domain", () => {
    const identity = { name: "web-copy", uuid: "0C7D6E1A-7B47-4E55-9A0B-1E4B9D7D2B11" };

    it("takes the new name and UUID and keeps the MAC unless asked (a memory image holds the old one)", () => {
      const xml = restoreDomainXml(live, { ...inPlace, identity });
      expect(xml).to.contain("<name>web-copy</name>");
      expect(xml).to.contain("0c7d6e1a-7b47-4e55-9a0b-1e4b9d7d2b11");
      expect(xml).not.to.contain("af90a77a");
      expect(xml).to.contain("52:54:00:12:34:56");
    });

    it("gives a file-backed console its own log file instead of appending to the source's", () => {
      const withFileConsole = live
        .replace("<serial type='pty'>", "<serial type='file'>")
        .replace(
          "<source path='/dev/pts/3'/>\n      <target type='isa-serial'",
          "<source path='/var/log/web.console'/>\n      <target type='isa-serial'",
        );
      const xml = restoreDomainXml(withFileConsole, { ...inPlace, identity });
      expect(xml).to.contain('path="/var/log/web.console.web-copy"');
      const same = restoreDomainXml(withFileConsole, inPlace);
      expect(same).to.contain('path="/var/log/web.console"');
    });

    it("takes new MACs for the interfaces, in order, and frees the tap device name", () => {
      const mac = macFromSeed("restore-uid", 0);
      const xml = restoreDomainXml(live, { ...inPlace, identity: { ...identity, macs: [mac] } });
      expect(xml).to.contain(mac);
      expect(xml).not.to.contain("52:54:00:12:34:56");
      expect(xml).not.to.contain("vnet3");
    });

    it("derives one new MAC per interface from a seed when asked (a copy beside its source)", () => {
      const xml = restoreDomainXml(live, {
        ...inPlace,
        identity: { ...identity, macSeed: "restore-uid" },
      });
      expect(xml).to.contain(macFromSeed("restore-uid", 0));
      expect(xml).not.to.contain("52:54:00:12:34:56");
    });

    it("refuses a malformed name, UUID, MAC or the wrong number of MACs", () => {
      const bad = (id: object) => () =>
        restoreDomainXml(live, { ...inPlace, identity: { ...identity, ...id } });
      expect(bad({ name: "../etc" })).to.throw(/domain name/);
      expect(bad({ uuid: "nope" })).to.throw(/not a UUID/);
      expect(bad({ macs: ["52:54:00:zz:00:01"] })).to.throw(/not a MAC/);
      expect(bad({ macs: [] })).to.throw(/0 MAC addresses for 1 interfaces/);
    });
  });

  it("derives the same locally administered MAC from the same seed, a different one per index", () => {
    expect(macFromSeed("uid-1", 0)).to.equal(macFromSeed("uid-1", 0));
    expect(macFromSeed("uid-1", 0)).not.to.equal(macFromSeed("uid-1", 1));
    expect(macFromSeed("uid-1", 0)).to.match(/^52:54:00(:[0-9a-f]{2}){3}$/);
  });
});
