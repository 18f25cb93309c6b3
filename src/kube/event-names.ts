// Names an Event must have for the API server to take it. An Event's name is a DNS subdomain of
// at most 253 characters and its reportingInstance at most 128: the regarded object's own name
// may already be 253 characters, and a node name (the agent's instance) as long, so both are cut
// to fit, with a digest of what was cut so two long names never collide. Pure.
import { createHash } from "node:crypto";

const MAX_NAME = 253;
const MAX_INSTANCE = 128;
const DIGEST = 10;

/** `<object name>.<suffix>`, shortened to a valid Event name when the object's name is long. */
export function eventName(objectName: string, suffix: string): string {
  const whole = `${objectName}.${suffix}`;
  if (whole.length <= MAX_NAME) return whole;
  // Room for ".<digest>.<suffix>"; a DNS subdomain part may not end in '-' or '.'.
  const keep = objectName.slice(0, MAX_NAME - suffix.length - DIGEST - 2).replace(/[-.]+$/, "");
  return `${keep}.${digest(objectName)}.${suffix}`;
}

/** The reportingInstance for an agent: its node name, shortened when over 128 characters. */
export function reportingInstance(node: string): string {
  if (node.length <= MAX_INSTANCE) return node;
  return `${node.slice(0, MAX_INSTANCE - DIGEST - 1)}-${digest(node)}`;
}

function digest(text: string): string {
  return createHash("sha256").update(text).digest("hex").slice(0, DIGEST);
}
