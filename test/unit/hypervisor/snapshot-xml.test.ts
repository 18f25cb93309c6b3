// The <domainsnapshot> builders, read back with an XML parser: the structure libvirt will see,
// with paths and names carrying XML-special characters arriving unchanged.
import { expect } from "chai";
import { XMLParser } from "fast-xml-parser";

import { diskOnlySnapshotXml, memorySnapshotXml } from "../../../src/hypervisor/snapshot-xml.ts";

type Node = Record<string, unknown>;

const parser = new XMLParser({
  ignoreAttributes: false,
  attributeNamePrefix: "@",
  parseAttributeValue: false,
  parseTagValue: false,
  isArray: (name) => name === "disk",
});

function parse(xml: string): Node {
  return (parser.parse(xml) as Node).domainsnapshot as Node;
}

function disksOf(snapshot: Node): Node[] {
  return ((snapshot.disks as Node | undefined)?.disk as Node[] | undefined) ?? [];
}

const NASTY = `/var/lib/vms/a&b <"quoted"> it's.qcow2`;

describe("snapshot XML: external disk-only snapshot", () => {
  it("snapshots the overlay disks externally into qcow2 files and skips every other disk", () => {
    const snapshot = parse(
      diskOnlySnapshotXml({
        name: "vmsnap-1",
        overlays: [
          { target: "vda", overlay: "/vms/vda.qcow2.vmsnap-1.qcow2" },
          { target: "vdc", overlay: "/vms/vdc.qcow2.vmsnap-1.qcow2" },
        ],
        domainTargets: ["vda", "vdb", "vdc", "sda"],
      }),
    );
    expect(snapshot.name).to.equal("vmsnap-1");
    expect(snapshot.memory).to.deep.equal({ "@snapshot": "no" });
    expect(disksOf(snapshot)).to.deep.equal([
      {
        "@name": "vda",
        "@snapshot": "external",
        "@type": "file",
        driver: { "@type": "qcow2" },
        source: { "@file": "/vms/vda.qcow2.vmsnap-1.qcow2" },
      },
      { "@name": "vdb", "@snapshot": "no" },
      {
        "@name": "vdc",
        "@snapshot": "external",
        "@type": "file",
        driver: { "@type": "qcow2" },
        source: { "@file": "/vms/vdc.qcow2.vmsnap-1.qcow2" },
      },
      { "@name": "sda", "@snapshot": "no" },
    ]);
  });

  it("carries paths, names and descriptions with XML-special characters unchanged", () => {
    const xml = diskOnlySnapshotXml({
      name: `n&<>'"`,
      description: `made by "vmsnap" & <friends>`,
      overlays: [{ target: "vda", overlay: NASTY }],
      domainTargets: ["vda"],
    });
    const snapshot = parse(xml);
    expect(snapshot.name).to.equal(`n&<>'"`);
    expect(snapshot.description).to.equal(`made by "vmsnap" & <friends>`);
    expect((disksOf(snapshot)[0]!.source as Node)["@file"]).to.equal(NASTY);
    // Escaped, not merely surviving a lenient parser: no raw special character in any value.
    expect(xml).to.not.include("a&b");
    expect(xml).to.include("a&amp;b");
  });

  it("writes a domain disk listed twice once", () => {
    const snapshot = parse(
      diskOnlySnapshotXml({
        name: "s",
        overlays: [{ target: "vda", overlay: "/v/a.qcow2" }],
        domainTargets: ["vda", "vdb", "vdb"],
      }),
    );
    expect(disksOf(snapshot).map((d) => d["@name"])).to.deep.equal(["vda", "vdb"]);
  });

  it("refuses requests libvirt would misread or that cannot be what was meant", () => {
    const base = { name: "s", domainTargets: ["vda", "vdb"] };
    const cases: Array<[string, Parameters<typeof diskOnlySnapshotXml>[0], RegExp]> = [
      ["no disk", { ...base, overlays: [] }, /at least one disk/],
      [
        "disk twice",
        {
          ...base,
          overlays: [
            { target: "vda", overlay: "/v/1" },
            { target: "vda", overlay: "/v/2" },
          ],
        },
        /listed twice/,
      ],
      ["unknown disk", { ...base, overlays: [{ target: "vdz", overlay: "/v/1" }] }, /not one of/],
      ["relative overlay", { ...base, overlays: [{ target: "vda", overlay: "v/1" }] }, /absolute/],
      [
        "newline in overlay",
        { ...base, overlays: [{ target: "vda", overlay: "/v/a\nb" }] },
        /control character/,
      ],
      [
        "tab in name",
        { ...base, name: "a\tb", overlays: [{ target: "vda", overlay: "/v/1" }] },
        /control character/,
      ],
      [
        "empty name",
        { ...base, name: "", overlays: [{ target: "vda", overlay: "/v/1" }] },
        /empty/,
      ],
    ];
    for (const [label, spec, message] of cases) {
      expect(() => diskOnlySnapshotXml(spec), label).to.throw(message);
    }
  });
});

describe("snapshot XML: external memory-only snapshot", () => {
  it("saves memory to the file and marks every disk snapshot='no'", () => {
    const snapshot = parse(
      memorySnapshotXml({
        name: "vmsnap-1.memory",
        file: "/var/lib/vmsnap/vmsnap-1.mem",
        domainTargets: ["vda", "vdb", "vdc"],
      }),
    );
    expect(snapshot.name).to.equal("vmsnap-1.memory");
    expect(snapshot.memory).to.deep.equal({
      "@snapshot": "external",
      "@file": "/var/lib/vmsnap/vmsnap-1.mem",
    });
    expect(disksOf(snapshot)).to.deep.equal([
      { "@name": "vda", "@snapshot": "no" },
      { "@name": "vdb", "@snapshot": "no" },
      { "@name": "vdc", "@snapshot": "no" },
    ]);
  });

  it("carries a memory file path with XML-special characters unchanged", () => {
    const snapshot = parse(memorySnapshotXml({ name: "m", file: NASTY, domainTargets: ["vda"] }));
    expect((snapshot.memory as Node)["@file"]).to.equal(NASTY);
  });

  it("refuses a relative or multi-line memory file path", () => {
    expect(() => memorySnapshotXml({ name: "m", file: "mem", domainTargets: [] })).to.throw(
      /absolute/,
    );
    expect(() => memorySnapshotXml({ name: "m", file: "/a\n/b", domainTargets: [] })).to.throw(
      /control character/,
    );
  });
});
