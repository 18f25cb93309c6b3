// The ownership check as one call for the snapshot effects: read what the host says about the
// domain (by the pinned UUID once there is one) and decide. Call it right after the domain
// look-up and before anything touches the guest.
import type { OwnershipDecision, OwnershipRequest } from "./decide.ts";
import { decideOwnership } from "./decide.ts";
import { readOwnership, type OwnershipPort } from "./read-ownership.ts";
import type { UnownedDomainPolicy } from "./unowned-policy.ts";

export interface OwnershipCheckOptions {
  /** The UUID recorded in status by an earlier check: the identity to check again. */
  readonly pinnedUuid?: string;
  readonly timeoutMs?: number;
}

/**
 * Allowed (with the UUID to pin) or Forbidden. Transport failures (ConnectionLost, Timeout) are
 * thrown as HypervisorErrors: retry, never deny or allow on them.
 *
 * @example
 * const ownership = await checkOwnership(hv, { namespace, domain, node }, config.unownedDomains);
 * if (!ownership.allowed) { log.info("ownership denied", { detail: ownership.logDetail }); return failed(ownership); }
 */
export async function checkOwnership(
  hypervisor: OwnershipPort,
  request: OwnershipRequest,
  unowned: UnownedDomainPolicy,
  options: OwnershipCheckOptions = {},
): Promise<OwnershipDecision> {
  const ref =
    options.pinnedUuid === undefined ? { name: request.domain } : { uuid: options.pinnedUuid };
  const finding = await readOwnership(hypervisor, ref, { timeoutMs: options.timeoutMs });
  return decideOwnership(request, finding, unowned);
}
