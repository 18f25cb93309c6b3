// The vmsnap owner element: the one fact a host's provisioner declares about a domain for
// tenancy — which Kubernetes namespaces may snapshot (and restore) it. It lives in the domain's
// libvirt <metadata>, which only whoever manages libvirtd can write; the guest cannot reach it.
//
//   <vmsnap:owner xmlns:vmsnap="https://vmsnap.io/xmlns/owner/v1">
//     <vmsnap:namespace>team-a</vmsnap:namespace>
//     <vmsnap:namespace>team-a-ci</vmsnap:namespace>
//   </vmsnap:owner>
//
// Set on a defined domain with
//   virsh metadata DOMAIN --uri https://vmsnap.io/xmlns/owner/v1 --key vmsnap --live --config \
//     --set '<owner><namespace>team-a</namespace></owner>'
// virDomainGetMetadata hands back the element without its namespace prefix; the parser accepts
// it either way, so the same code reads what libvirt returns and what a provisioner wrote.
import { XMLParser, XMLValidator } from "fast-xml-parser";

/** The XML namespace of the element: the key virDomainGetMetadata looks it up by. */
export const OWNER_NAMESPACE_URI = "https://vmsnap.io/xmlns/owner/v1";
/** The prefix `virsh metadata --key` gives it. */
export const OWNER_PREFIX = "vmsnap";

/** What the element says, or why it says nothing usable. */
export type OwnerElement =
  | { readonly kind: "owner"; readonly namespaces: readonly string[] }
  | { readonly kind: "invalid"; readonly problem: string };

// A Kubernetes namespace name: an RFC 1123 label.
const NAMESPACE_NAME = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const MAX_NAMESPACE_LENGTH = 63;

type Node = Record<string, unknown>;

const parser = new XMLParser({
  ignoreAttributes: true,
  // A provisioner may write <vmsnap:namespace>, libvirt returns <namespace>: the same element.
  removeNSPrefix: true,
  parseTagValue: false,
  trimValues: true,
  // Entities are not something an owner list needs; never expand them.
  processEntities: false,
  isArray: (name) => name === "namespace",
});

/**
 * Reads the owner element (as virDomainGetMetadata returns it). Anything but a well-formed
 * `<owner>` whose every `<namespace>` is a valid namespace name is `invalid`: a typo must not
 * quietly grant or be mistaken for "no element" (which an operator may have opted in for).
 * Unknown child elements are ignored, so later versions can add some.
 *
 * @example
 * parseOwnerElement("<owner><namespace>team-a</namespace></owner>")
 * // { kind: "owner", namespaces: ["team-a"] }
 */
export function parseOwnerElement(xml: string): OwnerElement {
  const valid = XMLValidator.validate(xml);
  if (valid !== true) return invalid(`not well-formed XML: ${valid.err.msg}`);
  const doc = parser.parse(xml) as Node;
  const roots = Object.keys(doc).filter((k) => !k.startsWith("?"));
  if (roots.length !== 1 || roots[0] !== "owner")
    return invalid(`the root element must be <owner>, found ${describe(roots)}`);
  const owner = doc.owner;
  // <owner/> and <owner></owner> parse to "": an element that owns nothing.
  const entries = typeof owner === "object" && owner !== null ? (owner as Node).namespace : [];
  const namespaces: string[] = [];
  for (const entry of (entries as unknown[] | undefined) ?? []) {
    if (typeof entry !== "string")
      return invalid("a <namespace> must hold only a namespace name, no elements");
    if (entry.length > MAX_NAMESPACE_LENGTH || !NAMESPACE_NAME.test(entry))
      return invalid(`${JSON.stringify(entry)} is not a Kubernetes namespace name`);
    if (!namespaces.includes(entry)) namespaces.push(entry);
  }
  return { kind: "owner", namespaces };
}

/**
 * The element for `namespaces`, as a provisioner passes it to `virsh metadata --set` (libvirt
 * adds the namespace from --uri and the prefix from --key).
 */
export function ownerElementXml(namespaces: readonly string[]): string {
  for (const ns of namespaces) {
    if (ns.length > MAX_NAMESPACE_LENGTH || !NAMESPACE_NAME.test(ns))
      throw new Error(`${JSON.stringify(ns)} is not a Kubernetes namespace name`);
  }
  return `<owner>${namespaces.map((ns) => `<namespace>${ns}</namespace>`).join("")}</owner>`;
}

function invalid(problem: string): OwnerElement {
  return { kind: "invalid", problem };
}

function describe(roots: readonly string[]): string {
  return roots.length === 0 ? "none" : roots.map((r) => `<${r}>`).join(", ");
}
