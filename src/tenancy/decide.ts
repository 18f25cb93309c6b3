// The tenancy decision: may this namespace snapshot (or restore) this domain? Pure. Deny by
// default, one reason (Forbidden), and one message whatever the cause — a missing domain, a
// domain without an owner element, a domain owned by someone else and an unreadable element all
// read the same, so a tenant cannot probe which domains exist on a host. Why exactly is kept
// apart, for the agent's log (read by the cluster's operators, not by tenants).
import { FailureReason } from "../api/reasons.ts";
import type { OwnerElement } from "./owner-element.ts";
import { allowsUnowned, type UnownedDomainPolicy } from "./unowned-policy.ts";

/** Who asks for what. */
export interface OwnershipRequest {
  /** The VMSnapshot's (or VMRestore's) namespace. */
  readonly namespace: string;
  /** spec.source.domain. */
  readonly domain: string;
  /** spec.source.node: this agent's node. */
  readonly node: string;
}

/** What the agent found on the host (see read-ownership.ts). */
export type OwnershipFinding =
  | { readonly domain: "missing" }
  | {
      readonly domain: "found";
      /** The identity the check was made on: pin it and use it for every later call. */
      readonly uuid: string;
      /** The owner element, undefined when the domain has none. */
      readonly owner: OwnerElement | undefined;
    };

export type OwnershipDecision =
  | {
      readonly allowed: true;
      readonly uuid: string;
      /** Why: the element names the namespace, or the operator opted in for unowned domains. */
      readonly basis: "owner-element" | "unowned-opt-in";
    }
  | {
      readonly allowed: false;
      readonly reason: typeof FailureReason.Forbidden;
      /** For status, the Event and the user: the same text for every cause. */
      readonly message: string;
      /** The actual cause. For the agent's log only: never in status or an Event. */
      readonly logDetail: string;
    };

/**
 * @example
 * const decision = decideOwnership(request, await readOwnership(hv, request.domain), policy);
 * if (!decision.allowed) return failed(decision.reason, decision.message); // before any freeze
 */
export function decideOwnership(
  request: OwnershipRequest,
  finding: OwnershipFinding,
  unowned: UnownedDomainPolicy,
): OwnershipDecision {
  if (finding.domain === "missing") return forbidden(request, "no domain of that name");
  const { owner, uuid } = finding;
  if (owner === undefined) {
    return allowsUnowned(unowned, request.namespace)
      ? { allowed: true, uuid, basis: "unowned-opt-in" }
      : forbidden(
          request,
          `domain ${uuid} has no vmsnap owner element and the namespace is not opted in for unowned domains`,
        );
  }
  if (owner.kind === "invalid")
    return forbidden(
      request,
      `domain ${uuid} has an unusable vmsnap owner element: ${owner.problem}`,
    );
  if (owner.namespaces.includes(request.namespace))
    return { allowed: true, uuid, basis: "owner-element" };
  return forbidden(
    request,
    `domain ${uuid} is owned by ${owner.namespaces.length === 0 ? "no namespace" : owner.namespaces.join(", ")}`,
  );
}

/** The one message a denied tenant sees. */
export function forbiddenMessage(request: OwnershipRequest): string {
  return (
    `namespace ${request.namespace} may not snapshot domain ${JSON.stringify(request.domain)} ` +
    `on node ${request.node}: no such domain is declared as owned by this namespace ` +
    `(the host's administrator declares owners in the domain's libvirt metadata)`
  );
}

function forbidden(request: OwnershipRequest, logDetail: string): OwnershipDecision {
  return {
    allowed: false,
    reason: FailureReason.Forbidden,
    message: forbiddenMessage(request),
    logDetail,
  };
}
