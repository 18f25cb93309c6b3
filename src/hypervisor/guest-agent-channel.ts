// Does a domain have a QEMU guest-agent channel? Without one, virDomainFSFreeze fails at once
// with code 74; reading the XML first lets the quiesce policy decide before anything is armed.
import { XMLParser } from "fast-xml-parser";

export const GUEST_AGENT_CHANNEL = "org.qemu.guest_agent.0";

const parser = new XMLParser({
  ignoreAttributes: false,
  attributeNamePrefix: "@",
  parseAttributeValue: false,
  isArray: (name) => name === "channel",
});

/** True when the domain XML declares a virtio channel named org.qemu.guest_agent.0. */
export function hasGuestAgentChannel(domainXml: string): boolean {
  const doc = parser.parse(domainXml) as {
    domain?: { devices?: { channel?: Array<{ target?: { "@type"?: string; "@name"?: string } }> } };
  };
  const channels = doc.domain?.devices?.channel ?? [];
  return channels.some(
    (c) => c.target?.["@type"] === "virtio" && c.target["@name"] === GUEST_AGENT_CHANNEL,
  );
}
