// Reading what libvirt says about snapshots and files: a `<domainsnapshot>` document (which
// disks got which overlay, where the memory went, what each disk's source was before), and every
// file a domain XML still references (sources and their backing chains), so that vmsnap deletes
// a leftover file only when libvirt no longer uses it. Pure: no IO.
import { XMLParser } from "fast-xml-parser";

type Node = Record<string, unknown>;

/** What one libvirt snapshot did, as its XML records it. */
export interface SnapshotRecord {
  readonly name: string;
  /** Disks snapshotted externally: target → the overlay file the domain switched to. */
  readonly overlays: ReadonlyMap<string, string>;
  /** target → the disk's source file when the snapshot was taken (now the overlay's backing file). */
  readonly sourcesBefore: ReadonlyMap<string, string>;
  /** The external memory image, if the snapshot has one. */
  readonly memoryFile: string | undefined;
}

const parser = new XMLParser({
  ignoreAttributes: false,
  attributeNamePrefix: "@",
  parseAttributeValue: false,
  parseTagValue: false,
  // Lists must stay lists even with one element.
  isArray: (name) => name === "disk",
});

/** Parses a `<domainsnapshot>` as virDomainSnapshotGetXMLDesc returns it. */
export function readSnapshot(xml: string): SnapshotRecord {
  const root = (parser.parse(xml) as Node).domainsnapshot;
  if (!isNode(root)) throw new Error("not a snapshot XML: no <domainsnapshot> root element");
  const overlays = new Map<string, string>();
  for (const disk of list(node(root.disks)?.disk)) {
    const target = attr(disk, "name");
    const file = attr(node(disk.source), "file");
    if (attr(disk, "snapshot") === "external" && target !== undefined && file !== undefined)
      overlays.set(target, file);
  }
  const sourcesBefore = new Map<string, string>();
  for (const disk of list(node(node(root.domain)?.devices)?.disk)) {
    const target = attr(node(disk.target), "dev");
    const file = attr(node(disk.source), "file");
    if (target !== undefined && file !== undefined) sourcesBefore.set(target, file);
  }
  return {
    name: typeof root.name === "string" ? root.name : "",
    overlays,
    sourcesBefore,
    memoryFile: attr(node(root.memory), "file"),
  };
}

/** Every file a domain XML references as a disk source, backing chains included. */
export function referencedFiles(domainXml: string): Set<string> {
  const files = new Set<string>();
  const walk = (value: unknown): void => {
    if (Array.isArray(value)) return value.forEach(walk);
    if (!isNode(value)) return;
    for (const [key, child] of Object.entries(value)) {
      // `<source file>` of the disk itself and, nested in `<backingStore>`, of each backing file.
      if (key === "source") {
        for (const s of Array.isArray(child) ? child : [child]) {
          const file = attr(node(s), "file");
          if (file !== undefined) files.add(file);
        }
      }
      walk(child);
    }
  };
  const devices = node(node((parser.parse(domainXml) as Node).domain)?.devices);
  walk(devices?.disk);
  return files;
}

function isNode(value: unknown): value is Node {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function node(value: unknown): Node | undefined {
  return isNode(value) ? value : undefined;
}

function list(value: unknown): Node[] {
  return (Array.isArray(value) ? value : value === undefined ? [] : [value]).filter(isNode);
}

function attr(n: Node | undefined, name: string): string | undefined {
  const value = n?.[`@${name}`];
  return typeof value === "string" ? value : undefined;
}
