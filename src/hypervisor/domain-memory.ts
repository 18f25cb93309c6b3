// The guest's RAM as the domain XML declares it: what a memory image of it can take on disk.
// `<currentMemory>` is the balloon's current size — the pages the guest can use, and so what a
// save writes (pages given back to the host read as zeros and cost next to nothing) — and
// `<memory>` the allocation it may grow to. Units are libvirt's (KiB by default; k/KiB, M/MiB,
// ... powers of 1024; KB, MB, ... powers of 1000; b/bytes).
import { XMLParser } from "fast-xml-parser";

export interface DomainMemory {
  /** `<memory>`: the most RAM the guest has, in bytes. */
  readonly maximumBytes: number;
  /** `<currentMemory>` (the balloon), in bytes; `<memory>` when absent. */
  readonly currentBytes: number;
}

type Node = Record<string, unknown>;

const parser = new XMLParser({
  ignoreAttributes: false,
  attributeNamePrefix: "@",
  parseAttributeValue: false,
  parseTagValue: false,
});

const UNITS: Record<string, number> = {
  b: 1,
  bytes: 1,
  KB: 1e3,
  k: 2 ** 10,
  KiB: 2 ** 10,
  MB: 1e6,
  M: 2 ** 20,
  MiB: 2 ** 20,
  GB: 1e9,
  G: 2 ** 30,
  GiB: 2 ** 30,
  TB: 1e12,
  T: 2 ** 40,
  TiB: 2 ** 40,
  PB: 1e15,
  P: 2 ** 50,
  PiB: 2 ** 50,
  EB: 1e18,
  E: 2 ** 60,
  EiB: 2 ** 60,
};

/**
 * The RAM of the domain in `domainXml`. Throws when `<memory>` is missing or unreadable: the
 * caller cannot size a memory image without it.
 *
 * @example
 * parseDomainMemory("<domain><memory unit='GiB'>2</memory><currentMemory>1048576</currentMemory></domain>")
 * // { maximumBytes: 2147483648, currentBytes: 1073741824 }
 */
export function parseDomainMemory(domainXml: string): DomainMemory {
  const doc = parser.parse(domainXml) as Node;
  const domain = doc.domain;
  if (typeof domain !== "object" || domain === null)
    throw new Error("not a domain XML: no <domain> root element");
  const memory = bytesOf((domain as Node).memory, "memory");
  if (memory === undefined) throw new Error("the domain XML has no <memory>");
  const current = bytesOf((domain as Node).currentMemory, "currentMemory");
  return { maximumBytes: memory, currentBytes: current ?? memory };
}

function bytesOf(element: unknown, name: string): number | undefined {
  if (element === undefined) return undefined;
  const text = typeof element === "object" ? (element as Node)["#text"] : element;
  const unit = typeof element === "object" ? ((element as Node)["@unit"] as string) : undefined;
  const value = typeof text === "string" ? text.trim() : "";
  if (!/^\d+$/.test(value))
    throw new Error(`<${name}> is not a whole number: ${JSON.stringify(value)}`);
  const factor = UNITS[unit ?? "KiB"];
  if (factor === undefined)
    throw new Error(`<${name}> has an unknown unit ${JSON.stringify(unit)}`);
  const bytes = Number(value) * factor;
  if (!Number.isSafeInteger(bytes)) throw new Error(`<${name}> is too large: ${value} ${unit}`);
  return bytes;
}
