// The operator's opt-in for domains that carry no owner element: on a single-tenant host, or for
// a demo, the node's operator may let some namespaces (or all, `*`) snapshot domains nobody has
// declared an owner for. Off by default: no element means denied. The opt-in never overrides an
// element: a domain whose element names other namespaces stays theirs.

/** Which namespaces may snapshot domains without an owner element on this node. */
export type UnownedDomainPolicy =
  | { readonly allow: "none" }
  | { readonly allow: "all" }
  | { readonly allow: "listed"; readonly namespaces: ReadonlySet<string> };

export const DENY_UNOWNED: UnownedDomainPolicy = { allow: "none" };

const NAMESPACE_NAME = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;

/**
 * Parses the flag's value: empty for none, `*` for every namespace, else a comma-separated list
 * of namespace names. Throws with a message naming the bad entry (the caller adds the flag).
 *
 * @example
 * parseUnownedDomainPolicy("demo, team-a")  // { allow: "listed", namespaces: Set{"demo","team-a"} }
 * parseUnownedDomainPolicy("*")             // { allow: "all" }
 */
export function parseUnownedDomainPolicy(text: string): UnownedDomainPolicy {
  const entries = text
    .split(",")
    .map((e) => e.trim())
    .filter((e) => e !== "");
  if (entries.length === 0) return DENY_UNOWNED;
  if (entries.includes("*")) {
    if (entries.length > 1)
      throw new Error("`*` allows every namespace; list nothing else with it");
    return { allow: "all" };
  }
  for (const entry of entries) {
    if (entry.length > 63 || !NAMESPACE_NAME.test(entry))
      throw new Error(`${JSON.stringify(entry)} is not a Kubernetes namespace name`);
  }
  return { allow: "listed", namespaces: new Set(entries) };
}

/** Whether `namespace` may snapshot a domain that has no owner element. */
export function allowsUnowned(policy: UnownedDomainPolicy, namespace: string): boolean {
  switch (policy.allow) {
    case "none":
      return false;
    case "all":
      return true;
    case "listed":
      return policy.namespaces.has(namespace);
  }
}
