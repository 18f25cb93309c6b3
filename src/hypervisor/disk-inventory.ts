// The disk inventory: which disks a domain has, read from its XML, and which backend can
// snapshot each (or why none can). Ceph RBD network disks go to the rbd backend, plain
// file-backed disks to libvirt's external snapshots; everything else is unsupported with a
// reason a user can act on (exclude the disk, or change it).
import { XMLParser } from "fast-xml-parser";

import type { CephMonitor, Disk, DiskSnapshotPlan, FileSource, RbdSource } from "./disk.ts";

type Node = Record<string, unknown>;

const parser = new XMLParser({
  ignoreAttributes: false,
  attributeNamePrefix: "@",
  // Keep every value a string: image names like "0123" or "1e5" must not become numbers.
  parseAttributeValue: false,
  parseTagValue: false,
  // <readonly/> parses to "", which must still count as present.
  allowBooleanAttributes: true,
});

/**
 * Every `<disk>` of a domain, in document order.
 *
 * @example
 * parseDisks(xml).filter((d) => d.plan.backend === "unsupported" && !excluded.includes(d.target))
 */
export function parseDisks(domainXml: string): Disk[] {
  const doc = parser.parse(domainXml) as Node;
  const domain = child(doc, "domain");
  if (domain === undefined) throw new Error("not a domain XML: no <domain> root element");
  return children(child(domain, "devices"), "disk").map(toDisk);
}

function toDisk(disk: Node): Disk {
  const target = child(disk, "target");
  const base = {
    target: attr(target, "dev") ?? "",
    bus: attr(target, "bus"),
    device: attr(disk, "device") ?? "disk",
    type: attr(disk, "type") ?? "file",
    readonly: has(disk, "readonly"),
    shareable: has(disk, "shareable"),
  };
  return { ...base, plan: planFor(disk, base) };
}

function planFor(
  disk: Node,
  d: Pick<Disk, "target" | "device" | "type" | "readonly" | "shareable">,
): DiskSnapshotPlan {
  const source = child(disk, "source");
  if (d.target === "") return unsupported("the disk has no <target dev>");
  if (d.device !== "disk")
    return unsupported(`a ${d.device} device is not snapshotted; exclude ${d.target}`);
  if (d.readonly) return unsupported(`${d.target} is read-only, nothing to snapshot; exclude it`);
  if (d.type === "network") {
    const protocol = attr(source, "protocol") ?? "unknown";
    if (protocol !== "rbd")
      return unsupported(`network disks over ${protocol} are not supported (only rbd)`);
    return rbdPlan(disk, source);
  }
  if (d.type === "file") {
    const path = attr(source, "file");
    if (path === undefined) return unsupported(`${d.target} has no source file (empty drive)`);
    // An external overlay switches only this domain to it; other domains sharing the file
    // would keep writing into the snapshot.
    if (d.shareable)
      return unsupported(
        `${d.target} is a shareable file disk; its other writers would corrupt the snapshot`,
      );
    const file: FileSource = withOptional({ path }, "format", attr(child(disk, "driver"), "type"));
    return { backend: "libvirt-file", file };
  }
  const where = attr(source, "dev") ?? attr(source, "volume") ?? attr(source, "dir") ?? "";
  return unsupported(
    `${d.type} disks are not supported${where ? ` (${where})` : ""}; only rbd and file disks are`,
  );
}

function rbdPlan(disk: Node, source: Node | undefined): DiskSnapshotPlan {
  const name = attr(source, "name") ?? "";
  // libvirt writes `pool/image` or `pool/namespace/image`; `image@snap` is a snapshot, read-only.
  if (name.includes("@")) return unsupported(`rbd source ${name} is a snapshot, not an image`);
  const parts = name.split("/");
  if (parts.length < 2 || parts.length > 3 || parts.some((p) => p === "")) {
    return unsupported(`rbd source name "${name}" is not pool/image or pool/namespace/image`);
  }
  const [pool, namespace, image] = parts.length === 3 ? parts : [parts[0], undefined, parts[1]];
  const monitors: CephMonitor[] = children(source, "host").map((host) =>
    withOptional({ host: attr(host, "name") ?? "" }, "port", toPort(attr(host, "port"))),
  );
  // <auth> sits in <source> in current libvirt, directly in <disk> in older XML.
  const auth = child(source, "auth") ?? child(disk, "auth");
  let rbd: RbdSource = withOptional(
    { pool: pool!, image: image!, monitors },
    "namespace",
    namespace,
  );
  if (auth !== undefined) {
    const secret = child(auth, "secret");
    const credentials = withOptional(
      withOptional({ username: attr(auth, "username") ?? "" }, "secretUuid", attr(secret, "uuid")),
      "secretUsage",
      attr(secret, "usage"),
    );
    rbd = { ...rbd, auth: credentials };
  }
  return { backend: "rbd", rbd };
}

function unsupported(reason: string): DiskSnapshotPlan {
  return { backend: "unsupported", reason };
}

function toPort(value: string | undefined): number | undefined {
  if (value === undefined || !/^\d+$/.test(value)) return undefined;
  return Number(value);
}

/** `object` with `key` set only when `value` is defined: absent fields stay absent. */
function withOptional<T extends object, K extends string, V>(
  object: T,
  key: K,
  value: V | undefined,
): T & { [P in K]?: V } {
  return value === undefined ? object : { ...object, [key]: value };
}

// ---- reading the parsed tree ---------------------------------------------------------------

function children(node: Node | undefined, name: string): Node[] {
  const value = node?.[name];
  if (value === undefined) return [];
  return (Array.isArray(value) ? value : [value]).map(asNode);
}

function child(node: Node | undefined, name: string): Node | undefined {
  return children(node, name)[0];
}

function has(node: Node | undefined, name: string): boolean {
  return node?.[name] !== undefined;
}

function attr(node: Node | undefined, name: string): string | undefined {
  const value = node?.[`@${name}`];
  return typeof value === "string" ? value : undefined;
}

// An element without attributes or children parses to "" (or its text): treat it as empty.
function asNode(value: unknown): Node {
  return typeof value === "object" && value !== null ? (value as Node) : {};
}
