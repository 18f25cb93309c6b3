// Reads what the tenancy decision needs from the host: does the domain exist, what is its UUID,
// and what does its owner element say. The element is read by the UUID just looked up, so the
// check is made on exactly the domain whose UUID the caller then pins — a same-named domain
// defined in between is not the one checked.
import type { Hypervisor } from "../hypervisor/connection.ts";
import { HypervisorError } from "../hypervisor/errors.ts";
import type { OwnershipFinding } from "./decide.ts";
import { OWNER_NAMESPACE_URI, parseOwnerElement } from "./owner-element.ts";

export type OwnershipPort = Pick<Hypervisor, "domainInfo" | "domainInfoByUUID" | "domainMetadata">;

/** Either a name to look up, or a UUID pinned by an earlier look-up. */
export type DomainRef = { readonly name: string } | { readonly uuid: string };

/**
 * What the host says about `ref`'s ownership. A missing domain is a finding, not an error;
 * every other failure (connection lost, timeout) is thrown as the HypervisorError it is, so the
 * caller retries instead of denying.
 */
export async function readOwnership(
  hypervisor: OwnershipPort,
  ref: DomainRef,
  options: { readonly timeoutMs?: number } = {},
): Promise<OwnershipFinding> {
  try {
    const info =
      "uuid" in ref
        ? await hypervisor.domainInfoByUUID(ref.uuid, options)
        : await hypervisor.domainInfo(ref.name, options);
    const element = await hypervisor.domainMetadata(info.uuid, OWNER_NAMESPACE_URI, {
      ...options,
      byUUID: true,
    });
    return {
      domain: "found",
      uuid: info.uuid,
      owner: element === undefined ? undefined : parseOwnerElement(element),
    };
  } catch (err) {
    if (err instanceof HypervisorError && err.reason === "DomainNotFound")
      return { domain: "missing" };
    throw err;
  }
}
