// Domain events as the adapter hands them out: libvirt's numbers decoded into names.
import {
  AGENT_REASONS,
  AGENT_STATES,
  LIFECYCLE_EVENTS,
  nameOf,
  type AgentReason,
  type AgentState,
  type LifecycleEventType,
} from "./flags.ts";
import type { NativeDomainEvent } from "./native.ts";

/** A domain started, stopped, paused, resumed, ... (VIR_DOMAIN_EVENT_ID_LIFECYCLE). */
export interface LifecycleEvent {
  readonly domain: string;
  readonly uuid: string;
  readonly type: LifecycleEventType;
  /** The type's detail (e.g. virDomainEventSuspendedDetailType); numeric, it varies by type. */
  readonly detail: number;
}

/** The guest agent connected or disconnected (VIR_DOMAIN_EVENT_ID_AGENT_LIFECYCLE). */
export interface AgentLifecycleEvent {
  readonly domain: string;
  readonly uuid: string;
  readonly state: AgentState;
  readonly reason: AgentReason;
}

export function decodeLifecycle(event: NativeDomainEvent): LifecycleEvent {
  return {
    domain: event.domain,
    uuid: event.uuid,
    type: nameOf(LIFECYCLE_EVENTS, event.event),
    detail: event.detail,
  };
}

export function decodeAgentLifecycle(event: NativeDomainEvent): AgentLifecycleEvent {
  return {
    domain: event.domain,
    uuid: event.uuid,
    state: nameOf(AGENT_STATES, event.event),
    reason: nameOf(AGENT_REASONS, event.detail),
  };
}
