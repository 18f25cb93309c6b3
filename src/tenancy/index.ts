// Tenancy: which namespace may snapshot which domain. The owner element format, the operator's
// opt-in for unowned domains, the decision, and the one read it needs from the host.
export {
  decideOwnership,
  forbiddenMessage,
  type OwnershipDecision,
  type OwnershipFinding,
  type OwnershipRequest,
} from "./decide.ts";
export {
  OWNER_NAMESPACE_URI,
  OWNER_PREFIX,
  ownerElementXml,
  parseOwnerElement,
  type OwnerElement,
} from "./owner-element.ts";
export {
  allowsUnowned,
  DENY_UNOWNED,
  parseUnownedDomainPolicy,
  type UnownedDomainPolicy,
} from "./unowned-policy.ts";
export { readOwnership, type DomainRef, type OwnershipPort } from "./read-ownership.ts";
export {
  parseTenancyOptions,
  TENANCY_FLAGS,
  TENANCY_USAGE,
  type TenancyOptions,
} from "./agent-options.ts";
export { checkOwnership, type OwnershipCheckOptions } from "./check-ownership.ts";
