// Machine state ↔ VMSnapshot status. The phase and everything the machine's context needs are
// stored in status, so status is the durable cursor: a restarted controller rebuilds exactly the
// context the previous one had. Conditions follow kstatus (Ready, Reconciling, Stalled) so that
// `kubectl wait --for=condition=Ready` and Flux/Argo health checks work, plus Quiesced.
import { parseDuration } from "../api/duration.ts";
import {
  ThawUnconfirmedReason,
  type FailureReason,
  type UnquiescedReason,
} from "../api/reasons.ts";
import type {
  Condition,
  ConditionStatus,
  Indication,
  VMSnapshot,
  VMSnapshotStatus,
} from "../api/types.ts";
import type { SnapshotContext, SnapshotInput } from "../machine/context.ts";
import { isFinal, restore, start, type MachineState } from "../machine/step.ts";
import type { Waiting } from "../controller/kind.ts";
import { defined, iso, toMs, withTransitionTimes } from "../controller/conditions.ts";

const DEFAULT_FREEZE_TIMEOUT = "10s";
/** Written (status Unknown) when a freeze's thaw could not be confirmed. */
const THAWED_CONDITION = "Thawed" as const;
const DEFAULT_FAILURE_DEADLINE = "5m";

/** The machine input a spec asks for, starting now. */
export function inputFromSpec(snapshot: VMSnapshot, startedAt: number): SnapshotInput {
  const spec = snapshot.spec;
  return {
    memory: spec.memory ?? false,
    memoryMode: spec.memoryMode ?? "Paused",
    quiesce: spec.quiesce ?? "IfAvailable",
    freezeTimeoutMs: parseDuration(spec.freezeTimeout ?? DEFAULT_FREEZE_TIMEOUT),
    failureDeadlineMs: parseDuration(spec.failureDeadline ?? DEFAULT_FAILURE_DEADLINE),
    startedAt,
  };
}

/** The machine state recorded in status, or a fresh one when nobody has started yet. */
export function stateFromStatus(snapshot: VMSnapshot, now: number): MachineState {
  const status = snapshot.status;
  if (!status?.phase || status.startTime === undefined) return start(inputFromSpec(snapshot, now));
  const input = inputFromSpec(snapshot, toMs(status.startTime)!);
  const quiesced = status.conditions?.find((c) => c.type === "Quiesced");
  const thawed = status.conditions?.find((c) => c.type === THAWED_CONDITION);
  const pausedAt = toMs(status.pausedAt);
  const context: SnapshotContext = {
    ...input,
    disks: status.disks ?? [],
    ...defined("freezeDeadline", toMs(status.freezeDeadline)),
    ...defined("domainUUID", status.domainUUID),
    ...defined("frozenAt", toMs(status.frozenAt)),
    ...defined("thawedAt", toMs(status.thawedAt)),
    ...defined("pausedAt", pausedAt),
    ...defined(
      "resumedAt",
      pausedAt !== undefined && status.downtimeMs !== undefined
        ? pausedAt + status.downtimeMs
        : undefined,
    ),
    ...(quiesced?.status === "True" ? { quiesced: true } : {}),
    ...(quiesced?.status === "False"
      ? {
          quiesced: false,
          unquiesced: { reason: quiesced.reason as UnquiescedReason, message: quiesced.message },
        }
      : {}),
    ...defined("memoryImage", status.memory),
    ...defined("memoryCapturedAt", toMs(status.memoryCapturedAt)),
    ...defined("definition", status.definition),
    ...defined(
      "thawUnconfirmed",
      thawed?.reason === ThawUnconfirmedReason ? thawed.message : undefined,
    ),
    ...defined("completedAt", toMs(status.completionTime)),
    ...defined(
      "error",
      status.error
        ? { reason: status.error.reason as FailureReason, message: status.error.message }
        : undefined,
    ),
  };
  return restore(status.phase, context);
}

/** The status that records `state`, keeping transition times of conditions that did not change. */
export function statusFromState(
  snapshot: VMSnapshot,
  state: MachineState,
  now: number,
  extra: { snapshotName: string; excludedDisks?: readonly string[]; waiting?: Waiting },
): VMSnapshotStatus {
  const c = state.context;
  const generation = snapshot.metadata.generation;
  const status: VMSnapshotStatus = {
    phase: state.phase,
    ...(generation !== undefined ? { observedGeneration: generation } : {}),
    snapshotName: extra.snapshotName,
    startTime: iso(c.startedAt),
    indications: indicationsOf(c),
    disks: [...c.disks],
    ...(extra.excludedDisks?.length ? { excludedDisks: [...extra.excludedDisks] } : {}),
    ...defined("freezeDeadline", iso(c.freezeDeadline)),
    ...defined("domainUUID", c.domainUUID),
    ...defined("frozenAt", iso(c.frozenAt)),
    ...defined("thawedAt", iso(c.thawedAt)),
    ...defined(
      "freezeDurationMs",
      c.frozenAt !== undefined && c.thawedAt !== undefined ? c.thawedAt - c.frozenAt : undefined,
    ),
    ...defined("pausedAt", iso(c.pausedAt)),
    ...defined(
      "downtimeMs",
      c.pausedAt !== undefined && c.resumedAt !== undefined ? c.resumedAt - c.pausedAt : undefined,
    ),
    ...defined("memory", c.memoryImage ? { ...c.memoryImage } : undefined),
    ...defined("memoryCapturedAt", iso(c.memoryCapturedAt)),
    ...defined("definition", c.definition ? { ...c.definition } : undefined),
    ...defined("completionTime", isFinal(state.phase) ? iso(c.completedAt ?? now) : undefined),
    readyToUse: state.phase === "Succeeded",
    ...defined("error", c.error ? { ...c.error } : undefined),
  };
  status.conditions = conditionsOf(
    state,
    snapshot.status?.conditions ?? [],
    now,
    generation,
    extra.waiting,
  );
  return status;
}

function conditionsOf(
  state: MachineState,
  previous: readonly Condition[],
  now: number,
  generation: number | undefined,
  waiting: Waiting | undefined,
): Condition[] {
  const { phase, context } = state;
  const failed = phase === "Failed";
  const succeeded = phase === "Succeeded";
  const wanted: Array<Omit<Condition, "lastTransitionTime">> = [
    {
      type: "Ready",
      status: succeeded ? "True" : "False",
      reason: succeeded ? "Succeeded" : failed ? context.error!.reason : phase,
      message: succeeded
        ? readyMessage(context)
        : failed
          ? context.error!.message
          : `snapshot in progress: ${phase}`,
    },
    {
      type: "Reconciling",
      status: isFinal(phase) ? "False" : "True",
      reason: isFinal(phase) ? phase : (waiting?.reason ?? phase),
      message: isFinal(phase)
        ? "no further work"
        : (waiting?.message ?? `working on phase ${phase}`),
    },
    {
      type: "Stalled",
      status: failed ? "True" : "False",
      reason: failed ? context.error!.reason : "NotStalled",
      message: failed ? context.error!.message : "no error",
    },
    quiescedCondition(context),
    // Only when it applies: a thaw that could not be confirmed must be said, never implied.
    ...(context.thawUnconfirmed === undefined
      ? []
      : [
          {
            type: THAWED_CONDITION,
            status: "Unknown" as ConditionStatus,
            reason: ThawUnconfirmedReason,
            message: context.thawUnconfirmed,
          },
        ]),
  ];
  return withTransitionTimes(wanted, previous, now, generation);
}

function quiescedCondition(context: SnapshotContext): Omit<Condition, "lastTransitionTime"> {
  if (context.quiesced === true) {
    return {
      type: "Quiesced",
      status: "True",
      reason: "FilesystemsFrozen",
      message: "the guest agent froze the guest's filesystems for the disk snapshots",
    };
  }
  if (context.quiesced === false) {
    return { type: "Quiesced", status: "False", ...context.unquiesced! };
  }
  return {
    type: "Quiesced",
    status: "Unknown" as ConditionStatus,
    reason: "NotYetDecided",
    message: "no freeze attempted yet",
  };
}

function readyMessage(context: SnapshotContext): string {
  const consistency = context.quiesced
    ? `application-consistent (frozen ${context.thawedAt! - context.frozenAt!} ms)`
    : context.unquiesced?.reason === "DomainOffline"
      ? "consistent (the domain was shut off)"
      : `crash-consistent only: ${context.unquiesced?.message ?? "not quiesced"}`;
  return `${context.disks.length} disk(s)${context.memoryImage ? " and memory" : ""} snapshotted, ${consistency}`;
}

/** Human-readable facts about what consistency the user got (KubeVirt-style indications). */
export function indicationsOf(context: SnapshotContext): Indication[] {
  const out: Indication[] = [];
  const reason = context.unquiesced?.reason;
  if (context.quiesced === undefined && context.freezeDeadline === undefined) return out;
  out.push(
    reason === "DomainOffline" ? "Offline" : reason === "DomainPaused" ? "Paused" : "Online",
  );
  if (context.frozenAt !== undefined || reason === "FreezeFailed") out.push("GuestAgent");
  if (reason === "NoGuestAgent") out.push("NoGuestAgent");
  if (context.quiesced === true) out.push("Quiesced");
  if (context.quiesced === false) out.push("Unquiesced");
  return out;
}
