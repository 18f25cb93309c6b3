// Pure: the domain XML a restore hands to libvirt — to virDomainRestoreFlags as `dxml` (memory
// restore) or to virDomainDefineXML (disks-only restore, new domain). The XML comes from the
// snapshot (see docs/restore-facts.md for where); this module only rewrites it:
//
// - every restored disk points at its restored image: a file disk at its new qcow2 overlay
//   (`<backingStore>` dropped: QEMU reads the chain from the qcow2 header, and a stale one would
//   name the pre-snapshot chain), an RBD disk at its image;
// - what a live XML carries but a definition must not: `<domain id>`, `<source index>`, the
//   dynamic security labels, a pty's `/dev/pts/N`, the agent channel's per-run socket path;
// - for a new domain: a new name and UUID, file-backed serial/console logs renamed
//   (`<path>.<new name>`, not the source's log), and — only when the caller asks (never with a
//   memory image, whose NIC state holds the old MAC and which libvirt checks for ABI stability) —
//   new MAC addresses.
//
// The document is parsed with order preserved and rebuilt, so every element this module does not
// touch keeps its place and attributes: libvirt's ABI check compares devices in order.
import { createHash } from "node:crypto";

import { XMLBuilder, XMLParser } from "fast-xml-parser";

/** Where a restored disk now lives. */
export type RestoredSource =
  | { readonly kind: "file"; readonly path: string }
  | {
      readonly kind: "rbd";
      readonly pool: string;
      readonly namespace?: string;
      readonly image: string;
    };

export interface RestoredDisk {
  /** `<target dev>` of the disk. */
  readonly target: string;
  readonly source: RestoredSource;
}

export interface NewDomainIdentity {
  readonly name: string;
  readonly uuid: string;
  /** New MACs for the `<interface>`s in document order; omitted: keep the snapshot's MACs. */
  readonly macs?: readonly string[];
  /** Or: a new MAC per interface derived from this seed (macFromSeed), however many there are. */
  readonly macSeed?: string;
}

export interface RestoreXmlOptions {
  readonly disks: readonly RestoredDisk[];
  /** A new domain: new name, UUID and maybe MACs. Omitted: the same domain, in place. */
  readonly identity?: NewDomainIdentity;
}

type Attributes = Record<string, string>;
/** One node of fast-xml-parser's ordered form: `{ tag: children, ":@"?: attributes }`. */
type XmlNode = Record<string, unknown> & { ":@"?: Attributes };

const parser = new XMLParser({
  preserveOrder: true,
  ignoreAttributes: false,
  attributeNamePrefix: "",
  parseAttributeValue: false,
  parseTagValue: false,
  trimValues: true,
  allowBooleanAttributes: true,
  commentPropName: "#comment",
});

const builder = new XMLBuilder({
  preserveOrder: true,
  ignoreAttributes: false,
  attributeNamePrefix: "",
  suppressEmptyNode: true,
  format: true,
  commentPropName: "#comment",
});

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const MAC = /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/i;
/** Libvirt's own rule for domain names is looser; ours keeps names safe in paths and RBD groups. */
const DOMAIN_NAME = /^[A-Za-z0-9_][A-Za-z0-9_.+:=-]{0,127}$/;

/**
 * The snapshot's domain XML rewritten for a restore. Throws when a restored disk is not in the
 * XML, when a disk's kind would change, or when the new identity is malformed.
 *
 * @example
 * restoreDomainXml(snapshotDomainXml, {
 *   disks: [{ target: "vda", source: { kind: "file", path: "/vms/web.qcow2.vmrestore-1.qcow2" } }],
 * });
 */
export function restoreDomainXml(xml: string, options: RestoreXmlOptions): string {
  const doc = parser.parse(xml) as XmlNode[];
  const domain = doc.find((n) => "domain" in n);
  if (domain === undefined) throw new Error("not a domain XML: no <domain> root element");
  const attrs = domain[":@"];
  if (attrs) delete attrs.id;
  const content = kids(domain, "domain");

  const wanted = new Map<string, RestoredSource>();
  for (const disk of options.disks) {
    if (wanted.has(disk.target)) throw new Error(`disk ${disk.target} is listed twice`);
    wanted.set(disk.target, disk.source);
  }
  const devices = first(content, "devices");
  const deviceNodes = devices ? kids(devices, "devices") : [];
  for (const node of deviceNodes) {
    if ("disk" in node) rewriteDisk(node, wanted);
    if ("serial" in node || "console" in node) dropPtyPath(node);
    if ("channel" in node) dropChannelPath(node);
  }
  if (wanted.size > 0)
    throw new Error(`the domain XML has no disk ${[...wanted.keys()].join(", ")}`);
  // Dynamic labels are chosen by libvirt at each start; keeping them would pin this run's.
  removeWhere(content, (n) => "seclabel" in n && n[":@"]?.type !== "static");

  if (options.identity) setIdentity(content, deviceNodes, options.identity);
  return builder.build(doc) as string;
}

function rewriteDisk(node: XmlNode, wanted: Map<string, RestoredSource>): void {
  const children = kids(node, "disk");
  const target = first(children, "target")?.[":@"]?.dev;
  if (target === undefined) return;
  const source = first(children, "source");
  if (source?.[":@"]) delete source[":@"].index;
  const restored = wanted.get(target);
  if (restored === undefined) return;
  wanted.delete(target);
  const type = node[":@"]?.type ?? "file";
  const expected = restored.kind === "file" ? "file" : "network";
  if (type !== expected)
    throw new Error(
      `disk ${target} is a ${type} disk; it cannot be restored from a ${restored.kind} image`,
    );
  if (source === undefined) throw new Error(`disk ${target} has no <source>`);
  const attributes = (source[":@"] ??= {});
  if (restored.kind === "file") {
    attributes.file = restored.path;
    // The restored image is always a qcow2 overlay on the snapshot's backing file.
    const driver = first(children, "driver");
    if (driver) (driver[":@"] ??= {}).type = "qcow2";
    removeWhere(children, (n) => "backingStore" in n);
  } else {
    attributes.name = [restored.pool, restored.namespace, restored.image].filter(Boolean).join("/");
  }
}

function dropPtyPath(node: XmlNode): void {
  const tag = "serial" in node ? "serial" : "console";
  if (node[":@"]?.type !== "pty") return;
  delete node[":@"].tty;
  const source = first(kids(node, tag), "source");
  if (source?.[":@"]) delete source[":@"].path;
}

/** A unix agent channel's socket path is per run (`.../domain-7-web/...`); libvirt picks a new one. */
function dropChannelPath(node: XmlNode): void {
  if (node[":@"]?.type !== "unix") return;
  const source = first(kids(node, "channel"), "source");
  if (source?.[":@"]?.mode === "bind") delete source[":@"].path;
}

function setIdentity(content: XmlNode[], devices: XmlNode[], identity: NewDomainIdentity): void {
  if (!DOMAIN_NAME.test(identity.name))
    throw new Error(`domain name ${JSON.stringify(identity.name)} is not allowed`);
  if (!UUID.test(identity.uuid)) throw new Error(`${JSON.stringify(identity.uuid)} is not a UUID`);
  setText(content, "name", identity.name);
  setText(content, "uuid", identity.uuid.toLowerCase());
  // A console or serial port logging to a file would append to the source domain's log.
  for (const node of devices.filter((n) => "serial" in n || "console" in n)) {
    const tag = "serial" in node ? "serial" : "console";
    if (node[":@"]?.type !== "file") continue;
    const source = first(kids(node, tag), "source");
    const path = source?.[":@"]?.path;
    if (path !== undefined) source![":@"]!.path = `${path}.${identity.name}`;
  }
  const interfaces = devices.filter((n) => "interface" in n);
  const macs =
    identity.macs ??
    (identity.macSeed === undefined
      ? undefined
      : interfaces.map((_, i) => macFromSeed(identity.macSeed!, i)));
  if (macs === undefined) return;
  if (macs.length !== interfaces.length)
    throw new Error(`${macs.length} MAC addresses for ${interfaces.length} interfaces`);
  interfaces.forEach((iface, i) => {
    const mac = macs[i]!;
    if (!MAC.test(mac)) throw new Error(`${JSON.stringify(mac)} is not a MAC address`);
    const children = kids(iface, "interface");
    const node = first(children, "mac");
    if (node) (node[":@"] ??= {}).address = mac.toLowerCase();
    else children.unshift({ mac: [], ":@": { address: mac.toLowerCase() } });
    // The host-side device name (vnet3) belongs to the running source domain.
    const target = first(children, "target");
    if (target?.[":@"]) delete target[":@"].dev;
  });
}

function setText(content: XmlNode[], tag: string, value: string): void {
  const node = first(content, tag);
  if (node) node[tag] = [{ "#text": value }];
  else content.unshift({ [tag]: [{ "#text": value }] });
}

function kids(node: XmlNode, tag: string): XmlNode[] {
  const value = node[tag];
  if (Array.isArray(value)) return value as XmlNode[];
  const fresh: XmlNode[] = [];
  node[tag] = fresh;
  return fresh;
}

function first(nodes: XmlNode[], tag: string): XmlNode | undefined {
  return nodes.find((n) => tag in n);
}

function removeWhere(nodes: XmlNode[], predicate: (n: XmlNode) => boolean): void {
  for (let i = nodes.length - 1; i >= 0; i--) if (predicate(nodes[i]!)) nodes.splice(i, 1);
}

/**
 * A locally administered unicast MAC (`52:54:00` is QEMU's prefix) derived from a seed, so a
 * retried restore picks the same addresses.
 *
 * @example macFromSeed("4b9c…-uid", 0) // "52:54:00:9a:1f:03"
 */
export function macFromSeed(seed: string, index: number): string {
  const bytes = createHash("sha256").update(`${seed}/${index}`).digest();
  return ["52", "54", "00", ...[0, 1, 2].map((i) => bytes[i]!.toString(16).padStart(2, "0"))].join(
    ":",
  );
}
