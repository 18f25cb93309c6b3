// Reading libvirt's own documents: a snapshot XML exactly as libvirt 9.0 returned it (the
// overlays, the sources before the snapshot, no memory), and the files a live domain XML still
// references through its backing chains.
import { expect } from "chai";
import { readFileSync } from "node:fs";

import { readSnapshot, referencedFiles } from "../../../src/hypervisor/snapshot-read.ts";

const DISK_ONLY = readFileSync(
  new URL("../../fixtures/snapshots/disk-only-libvirt-9.0.xml", import.meta.url),
  "utf8",
);

describe("reading snapshot XML", () => {
  it("finds each disk's overlay and its source before the snapshot in libvirt 9.0's XML", () => {
    const record = readSnapshot(DISK_ONLY);
    expect(record.name).to.equal("snap1");
    expect([...record.overlays]).to.deep.equal([
      ["vda", "/var/lib/vms/vda.qcow2.snap1.qcow2"],
      ["vdb", "/var/lib/vms/vdb.qcow2.snap1.qcow2"],
    ]);
    expect([...record.sourcesBefore]).to.deep.equal([
      ["vda", "/var/lib/vms/vda.qcow2"],
      ["vdb", "/var/lib/vms/vdb.qcow2"],
    ]);
    expect(record.memoryFile).to.equal(undefined);
  });

  it("finds the memory file and ignores disks that were not snapshotted", () => {
    const record = readSnapshot(
      `<domainsnapshot><name>m</name><memory snapshot='external' file='/m/a&amp;b.mem'/>` +
        `<disks><disk name='vda' snapshot='no'/></disks></domainsnapshot>`,
    );
    expect(record.memoryFile).to.equal("/m/a&b.mem");
    expect(record.overlays.size).to.equal(0);
  });

  it("refuses a document that is not a snapshot", () => {
    expect(() => readSnapshot("<domain/>")).to.throw(/domainsnapshot/);
  });
});

describe("files a domain references", () => {
  it("includes every file of every backing chain, and nothing but disk sources", () => {
    const xml = `<domain><devices>
      <disk type='file'><source file='/v/a.qcow2.s2.qcow2' index='3'/>
        <backingStore type='file' index='2'><source file='/v/a.qcow2.s1.qcow2'/>
          <backingStore type='file' index='1'><source file='/v/a.qcow2'/><backingStore/></backingStore>
        </backingStore><target dev='vda'/></disk>
      <disk type='file'><source file='/v/b.qcow2'/><backingStore/><target dev='vdb'/></disk>
      <disk type='network'><source protocol='rbd' name='vms/c'/><target dev='vdc'/></disk>
      <serial type='file'><source path='/v/console.log'/></serial>
    </devices></domain>`;
    expect([...referencedFiles(xml)].sort()).to.deep.equal([
      "/v/a.qcow2",
      "/v/a.qcow2.s1.qcow2",
      "/v/a.qcow2.s2.qcow2",
      "/v/b.qcow2",
    ]);
  });
});
