// The effect of each step of the phase machine: what vmsnap does to libvirt and Ceph to move a
// snapshot on, and the event that reports how it went. The machine's step alone chooses the
// effect (EFFECTS below); every effect is idempotent (names derive from the VMSnapshot UID),
// every call has a deadline, and the decisions (policy, deadlines, what to undo) are the
// machine's, not this module's.
//
// An attempt's in-memory session records what only this process can know: that it armed the
// freeze itself and which disks take part. A frozen phase found without a session belongs to a
// previous controller process; its guard (or the startup recovery) has thawed the guest, so the
// attempt cannot go on consistently and fails as Interrupted, with its artefacts removed.
import { join } from "node:path";
import { monotonicNow } from "../clock.ts";
import { FailureReason, UnquiescedReason, WaitReason } from "../api/reasons.ts";
import type { VMSnapshot } from "../api/types.ts";
import { inUseByRestore } from "../api/restore-types.ts";
import type { Hypervisor } from "../hypervisor/connection.ts";
import type { Disk } from "../hypervisor/disk.ts";
import { parseDisks } from "../hypervisor/disk-inventory.ts";
import { describeHypervisorError, HypervisorError } from "../hypervisor/errors.ts";
import { DomainXmlFlags } from "../hypervisor/flags.ts";
import { hasGuestAgentChannel } from "../hypervisor/guest-agent-channel.ts";
import {
  DEFAULT_THAW_POLICY,
  thawConfirmed,
  thawGuest,
  type ThawOutcome,
  type ThawPolicy,
} from "../hypervisor/thaw.ts";
import { compensationsFor, type Compensation } from "../machine/machine.ts";
import {
  inFrozenWindow,
  savesMemoryLive,
  stepDeadlineOf,
  type SnapshotContext,
} from "../machine/context.ts";
import type { SnapshotEvent } from "../machine/events.ts";
import { isFinal, type MachineState } from "../machine/step.ts";
import type { DiskSnapshotHandle } from "../storage/backend.ts";
import type { Outcome as KindOutcome } from "../controller/kind.ts";
import { objectKey } from "../kube/resource.ts";
import { resumeIfPaused, settleLeftovers, snapshotLeftovers } from "../recovery/leftovers.ts";
import { checkMemorySpace } from "../limits/check-memory-space.ts";
import type { NamespaceCap } from "../limits/namespace-cap.ts";
import { checkOwnership } from "../tenancy/check-ownership.ts";
import type { UnownedDomainPolicy } from "../tenancy/unowned-policy.ts";
import type { Admission } from "./admission.ts";
import { failureFrom, type Failure } from "./failures.ts";
import type { StorageRegistry } from "../storage/registry.ts";
import type { HypervisorPort, LiveMemoryPort, MemoryImagePort, ThawGuardPort } from "./ports.ts";

export type Outcome = KindOutcome<SnapshotEvent>;

export interface EffectsOptions {
  /** Plus guestPing: the agent is asked, with a deadline, before it is asked to freeze. */
  readonly hypervisor: HypervisorPort & Pick<Hypervisor, "guestPing">;
  readonly storage: StorageRegistry;
  readonly memory: MemoryImagePort;
  /** Live memory (spec.memoryMode Live); without it such a snapshot fails UnsupportedMemoryMode. */
  readonly liveMemory?: LiveMemoryPort;
  readonly guard: ThawGuardPort;
  readonly admission: Admission;
  readonly memoryDir: string;
  /** Deadline of one libvirt call that is not bounded by a freeze window. */
  readonly callTimeoutMs: number;
  readonly now?: () => number;
  readonly log?: (message: string, fields: Record<string, unknown>) => void;
  /** True once shutdown began: no new freeze starts (snapshots in flight go on). */
  readonly isDraining?: () => boolean;
  /** Every adapter error met, for metrics (libvirt errors by code). */
  readonly onError?: (err: unknown) => void;
  /** A failed attempt's unconfirmed thaw was confirmed later by asking the guest agent. */
  readonly onThawConfirmed?: (snapshot: VMSnapshot) => void;
  /** Who may snapshot which domain here, and the per-host limits (src/tenancy, src/limits). */
  readonly tenancy?: {
    readonly node: string;
    readonly unownedDomains: UnownedDomainPolicy;
    readonly memoryReserveBytes: number;
    readonly namespaceCap?: NamespaceCap;
  };
}

/** What this process knows about an attempt that status cannot say. */
interface Session {
  /** The domain's UUID at the first look-up: a same-named domain is never the one thawed. */
  uuid?: string;
  disks: Disk[];
  allTargets: string[];
  armedHere: boolean;
  pausedHere: boolean;
  /** Live memory: the image's header is written and its file handed to QEMU. */
  livePrepared?: boolean;
  /** A storage call that may still be running after its deadline: removal waits for it. */
  inFlight?: Promise<unknown>;
}

const WAIT_RETRY_MS = 1_000;
/** A freeze is not started with less of its window left than this (or half the timeout). */
const MIN_FREEZE_WINDOW_MS = 1_000;
/** How long the agent may take to answer guest-ping before a freeze: libvirt's own sync wait. */
const AGENT_PROBE_TIMEOUT_MS = 5_000;

/** What the effects need of a guard's `thawed` report. */
export interface GuardReport {
  /** The entry's id: the VMSnapshot UID. */
  readonly id: string;
  /** When the thaw (or its last try) ended, epoch ms. */
  readonly at: number;
  readonly outcome: ThawOutcome;
  readonly error?: string;
}

/** Why a thaw is not confirmed, for a condition message. */
function unconfirmedWhy(outcome: ThawOutcome, error: string | undefined): string {
  if (outcome === "lost")
    return "the domain was not found (libvirt code 42): it may have been migrated, or undefined and defined again, while frozen, and may still be frozen elsewhere";
  return `the thaw ${outcome === "failed" ? "failed" : `ended ${outcome}`}${error === undefined ? "" : ` (${error})`}`;
}

/** The backend snapshot name of a VMSnapshot: derived from its UID, so retries are no-ops. */
export function snapshotNameOf(snapshot: VMSnapshot): string {
  return `vmsnap-${snapshot.metadata.uid}`;
}

export const keyOf: (snapshot: VMSnapshot) => string = objectKey;

type Effect = (
  effects: SnapshotEffects,
  snapshot: VMSnapshot,
  c: SnapshotContext,
) => Promise<Outcome>;

/** The effect of each step of the machine (src/machine/machine.ts): the step alone decides. */
const EFFECTS: Record<string, Effect> = {
  "Pending.Inspecting": (e, s, c) => e.inspect(s, c),
  "Pending.Armed": (e, s, c) => e.freeze(s, c),
  "Pending.Unfrozen": (e, s, c) => e.snapshotDisks(s, c),
  Frozen: (e, s, c) => e.frozen(s, c),
  "DisksSnapshotted.SavingMemory": (e, s, c) => e.saveMemory(s, c),
  "DisksSnapshotted.CapturingMemory": (e, s, c) => e.captureMemory(s, c),
  "DisksSnapshotted.WritingMemory": (e, s, c) => e.writeMemory(s, c),
  "DisksSnapshotted.Thawing": (e, s) => e.thaw(s),
  "DisksSnapshotted.Completing": (e, s, c) => e.complete(s, c),
  "MemorySaved.Thawing": (e, s) => e.thaw(s),
  "MemorySaved.Completing": (e, s, c) => e.complete(s, c),
  "Thawed.WritingMemory": (e, s, c) => e.writeMemory(s, c),
  "Thawed.Completing": (e, s, c) => e.complete(s, c),
};

/** How often a deleted snapshot still used by a restore looks again (the restore's end wakes it). */
const IN_USE_RETRY_MS = 10_000;

/** A thaw inside the reconcile: a few quick tries; the guard stays armed if they all fail. */
const EFFECT_THAW_ATTEMPTS = 3;

/** spec.memoryMode Live asked of an agent wired without the live-memory port. */
const NO_LIVE_MEMORY = {
  reason: FailureReason.UnsupportedMemoryMode,
  message: "spec.memoryMode Live is not available on this host's agent",
} as const;

/** How often a finished attempt's unconfirmed thaw is checked again with the guest agent. */
export const THAW_RECHECK_MS = 10_000;

export class SnapshotEffects {
  private readonly sessions = new Map<string, Session>();
  /** What the thaw guard reported for each attempt it fired, by VMSnapshot UID. */
  private readonly guardReports = new Map<string, GuardReport>();
  /**
   * Removals of failed attempts that wait for a storage call past its deadline, by snapshot
   * UID. The domain stays held until each settles; a deletion waits for it first.
   */
  private readonly pendingRemovals = new Map<string, Promise<void>>();
  private readonly now: () => number;

  private readonly thawPolicy: ThawPolicy;
  private readonly recoveryPolicy: ThawPolicy;

  constructor(private readonly o: EffectsOptions) {
    this.now = o.now ?? monotonicNow;
    this.thawPolicy = {
      attempts: EFFECT_THAW_ATTEMPTS,
      retryDelayMs: 100,
      maxRetryDelayMs: 500,
      callTimeoutMs: o.callTimeoutMs,
    };
    this.recoveryPolicy = { ...DEFAULT_THAW_POLICY, callTimeoutMs: o.callTimeoutMs };
  }

  /** Runs the effect of the current step and reports its outcome as one event (or a wait). */
  async run(snapshot: VMSnapshot, state: MachineState): Promise<Outcome> {
    const effect = EFFECTS[state.step];
    if (!effect) throw new Error(`no effect for step ${state.step}`);
    const thawedByGuard = this.thawedByGuard(snapshot, state.context);
    if (thawedByGuard) return thawedByGuard;
    const outcome = await effect(this, snapshot, state.context);
    // The guard may have thawed while the effect ran (its disks were then taken after a thaw).
    return (
      ("event" in outcome && outcome.event.type === "FAILED"
        ? undefined
        : this.thawedByGuard(snapshot, state.context)) ?? outcome
    );
  }

  /**
   * Records that the thaw guard fired an attempt's entry (at the deadline, or because it lost
   * this process) and how its thaw ended. That attempt cannot go on consistently; only a
   * confirmed thaw (thawed, or the guest found stopped) ends its frozen window.
   */
  guardFired(report: GuardReport): void {
    this.guardReports.set(report.id, report);
  }

  /** A failure when the guard fired on this attempt's frozen (or paused) guest under it. */
  private thawedByGuard(snapshot: VMSnapshot, c: SnapshotContext): Outcome | undefined {
    const report = this.guardReports.get(snapshot.metadata.uid!);
    if (report === undefined || !inFrozenWindow(c)) return undefined;
    const deadline = new Date(c.freezeDeadline ?? report.at).toISOString();
    return failed(this.now(), {
      reason: FailureReason.FreezeTimeout,
      message: thawConfirmed(report.outcome)
        ? `the thaw guard thawed the guest at ${new Date(report.at).toISOString()} (deadline ${deadline}); a snapshot taken after that would not be consistent`
        : `the thaw guard fired at the deadline (${deadline}) but could not confirm a thaw: ${unconfirmedWhy(report.outcome, report.error)}`,
    });
  }

  /**
   * Runs the compensations a failure asked for, in order; each one is best effort. Returns
   * `next` with when the guest was thawed and resumed, so status can tell how long a failed
   * attempt held it frozen or paused.
   */
  async compensate(
    snapshot: VMSnapshot,
    state: MachineState,
    next: MachineState,
    actions: readonly Compensation[],
  ): Promise<MachineState> {
    const domain = snapshot.spec.source.domain;
    const resume = actions.includes("resumeVcpus");
    const done: { thawedAt?: number; resumedAt?: number; unconfirmed?: string } = {};
    try {
      if (actions.includes("thaw")) {
        // One call resumes first (a paused guest's agent cannot thaw), then thaws.
        const thaw = await this.thawQuietly(snapshot, resume);
        if (thaw.resumed) done.resumedAt = this.now();
        if (thaw.done) done.thawedAt = this.now();
        else
          done.unconfirmed = `${unconfirmedWhy(thaw.outcome, thaw.error)}; the thaw guard stays armed and keeps trying`;
      } else if (resume && (await this.resumeIfPaused(domain))) {
        // Never a thaw here: this attempt did not freeze, and a freeze it did not make (an
        // administrator's, a backup tool's) is not its to undo.
        done.resumedAt = this.now();
      }
    } catch (err) {
      this.o.log?.("compensation failed", { key: keyOf(snapshot), error: String(err) });
    }
    if (actions.includes("removeArtefacts")) {
      const uid = snapshot.metadata.uid!;
      const outlived = this.sessions.get(uid)?.inFlight !== undefined;
      const removal = this.removeArtefacts(snapshot, state.context).catch((err: unknown) => {
        this.o.log?.("removing a failed attempt's artefacts failed", {
          key: keyOf(snapshot),
          error: String(err),
        });
      });
      if (outlived) {
        // A storage call outlived its deadline: removal waits for it to settle, up to Ceph's
        // own op timeout. The guest is thawed already, and status says so now — not "Frozen"
        // for as long as a stopped OSD keeps that call waiting.
        this.pendingRemovals.set(uid, removal);
      } else {
        await removal;
      }
    }
    this.o.admission.releaseFreezeSlot(keyOf(snapshot));
    // Whoever thawed first: the guard's thaw is the end of the frozen window when it came first.
    const guard = this.guardReports.get(snapshot.metadata.uid!);
    if (guard !== undefined && actions.includes("thaw")) {
      if (thawConfirmed(guard.outcome)) {
        done.thawedAt = Math.min(done.thawedAt ?? guard.at, guard.at);
        delete done.unconfirmed;
      } else if (done.thawedAt === undefined) {
        // The guard fired and ended unconfirmed: its word is final, it tries no more.
        done.unconfirmed = `the thaw guard could not confirm a thaw: ${unconfirmedWhy(guard.outcome, guard.error)}`;
      }
    }
    const c = next.context;
    return {
      ...next,
      context: {
        ...c,
        ...(done.unconfirmed !== undefined &&
        done.thawedAt === undefined &&
        c.thawedAt === undefined
          ? { thawUnconfirmed: done.unconfirmed }
          : {}),
        ...(done.thawedAt !== undefined && c.thawedAt === undefined
          ? { thawedAt: done.thawedAt }
          : {}),
        ...(done.resumedAt !== undefined && c.resumedAt === undefined
          ? { resumedAt: done.resumedAt }
          : {}),
      },
    };
  }

  /**
   * Deletion. An unfinished attempt undoes only what it did itself (the machine's
   * compensations for its recorded state: a snapshot that merely waited for the domain never
   * thaws or resumes the guest another snapshot froze); a finished one's artefacts go under
   * deletionPolicy Delete and stay under Retain.
   */
  async finalize(
    snapshot: VMSnapshot,
    state: MachineState,
  ): Promise<void | { retryAfterMs: number }> {
    // A restore reads this snapshot's disks and memory image: they stay until it is done (it
    // removes its finalizer then, which brings the snapshot back here).
    if (inUseByRestore(snapshot)) return { retryAfterMs: IN_USE_RETRY_MS };
    await this.pendingRemovals.get(snapshot.metadata.uid!);
    if (!isFinal(state.phase)) {
      await this.compensate(snapshot, state, state, compensationsFor(state.context));
    } else if ((snapshot.spec.deletionPolicy ?? "Delete") === "Delete") {
      // Removal changes the domain's storage (the RBD group goes once it holds no snapshot):
      // never while another snapshot or a restore of the domain is between two of its steps,
      // where a new snapshot's group would vanish between its prepare and its create.
      const domain = snapshot.spec.source.domain;
      const key = keyOf(snapshot);
      if (!this.o.admission.claimDomain(domain, key)) return { retryAfterMs: WAIT_RETRY_MS };
      try {
        // A failed attempt removed its artefacts when it failed, unless storage was down then:
        // removal is idempotent, so it runs again here.
        await this.removeArtefacts(snapshot, state.context);
      } catch (err) {
        this.o.admission.release(domain, key);
        throw err;
      }
    }
  }

  /**
   * Removes everything this snapshot made: what status recorded (whatever the domain's disks
   * are now: a disk may have been detached or moved since), plus what this attempt's disks may
   * hold that status did not record yet (a create that landed just before a crash).
   */
  async removeArtefacts(snapshot: VMSnapshot, context: SnapshotContext): Promise<void> {
    // An attempt that never started made nothing; "cleaning up" would call into a domain whose
    // ownership it may never have passed (a Forbidden snapshot, one deleted before its first look).
    if (!startedWork(context)) return;
    const session = this.sessions.get(snapshot.metadata.uid!);
    // A storage call that outlived its deadline may still create its snapshot: let it settle
    // (its own process timeout bounds this) so nothing it makes is orphaned.
    await session?.inFlight?.catch(() => undefined);
    const domain = snapshot.spec.source.domain;
    const name = snapshotNameOf(snapshot);
    const attempt = session ?? (await this.currentDomain(domain));
    // The UUID the attempt pinned names what it made (the RBD group), not the one there now.
    const domainUUID = session?.uuid ?? context.domainUUID ?? attempt.uuid;
    // The definition first: it lives on (or beside) the disks the snapshot names.
    await this.o.storage.removeDefinition(name, context.disks);
    await this.o.storage.remove(
      { domain, name, ...withUUID(domainUUID) },
      context.disks,
      attempt.disks,
    );
    if (savesMemoryLive(context) && context.memoryImage === undefined) {
      // A live write that never finished: QEMU may still be writing (it holds its own descriptor).
      await this.o.liveMemory?.cancel(domain, this.memoryFileOf(snapshot));
    }
    await this.o.memory.remove({ domain, name, file: this.memoryFileOf(snapshot) });
  }

  /**
   * Start-up: thaws (and resumes) every guest that an in-flight snapshot of a previous process
   * may have left frozen (or paused), patiently, before anything else happens.
   */
  async recoverLeftovers(snapshots: readonly VMSnapshot[]): Promise<void> {
    await settleLeftovers(this.o.hypervisor, snapshotLeftovers(snapshots, this.now()), {
      policy: this.recoveryPolicy,
      now: this.now,
      ...(this.o.log ? { log: this.o.log } : {}),
    });
  }

  /**
   * A finished attempt whose thaw was never confirmed (the guard's thaw failed or lost the
   * domain): ask the guest agent itself (`guest-fsfreeze-status`) until it says thawed, or the
   * pinned domain is found shut off. Until then status keeps `Thawed=Unknown`; then it records
   * when the thaw was confirmed (an upper bound of the frozen window, which status then shows).
   */
  async recheckThaw(
    snapshot: VMSnapshot,
    state: MachineState,
  ): Promise<{ state?: MachineState; retryAfterMs?: number }> {
    const c = state.context;
    try {
      const info =
        c.domainUUID === undefined
          ? await this.o.hypervisor.domainInfo(snapshot.spec.source.domain, {
              timeoutMs: this.o.callTimeoutMs,
            })
          : await this.o.hypervisor.domainInfoByUUID(c.domainUUID, {
              timeoutMs: this.o.callTimeoutMs,
            });
      const thawed =
        !info.active ||
        (await this.o.hypervisor.freezeStatus(info.name, { timeoutMs: this.o.callTimeoutMs })) ===
          "thawed";
      if (thawed) {
        this.o.onThawConfirmed?.(snapshot);
        const { thawUnconfirmed: _, ...rest } = c;
        return { state: { ...state, context: { ...rest, thawedAt: this.now() } } };
      }
    } catch (err) {
      // Not here (migrated?), libvirtd or the agent not answering: still unknown.
      this.o.onError?.(err);
    }
    return { retryAfterMs: THAW_RECHECK_MS };
  }

  /** Lets go of the domain and freeze slot of a snapshot that vanished without finalize. */
  forget(key: string): void {
    this.o.admission.releaseKey(key);
    this.o.tenancy?.namespaceCap?.release(key);
  }

  /** Forgets the attempt: its domain, freeze slot and session. */
  finish(snapshot: VMSnapshot): void {
    const uid = snapshot.metadata.uid!;
    this.sessions.delete(uid);
    this.guardReports.delete(uid);
    const release = () => {
      this.o.admission.release(snapshot.spec.source.domain, keyOf(snapshot));
      this.o.tenancy?.namespaceCap?.release(keyOf(snapshot));
    };
    const removal = this.pendingRemovals.get(uid);
    if (removal === undefined) return release();
    // The domain's storage is still being changed: the next snapshot of it waits until then.
    void removal.then(() => {
      if (this.pendingRemovals.get(uid) === removal) this.pendingRemovals.delete(uid);
      release();
    });
  }

  // ---- phases ---------------------------------------------------------------------------

  /** Looks at the domain, claims it, and decides: freeze (armed first), or why not. */
  async inspect(snapshot: VMSnapshot, c: SnapshotContext): Promise<Outcome> {
    const key = keyOf(snapshot);
    const domain = snapshot.spec.source.domain;
    if (this.o.isDraining?.()) {
      return wait(
        WaitReason.ShuttingDown,
        "this host's agent is shutting down; the next one takes over",
      );
    }
    // Ownership before anything else, the domain lock included: its wait message names the
    // snapshot holding the domain, which a tenant who does not own it must not learn.
    const refusal = await this.ownershipRefusal(snapshot);
    if (refusal) return refusal;
    const cap = this.o.tenancy?.namespaceCap;
    if (cap && !cap.claim(snapshot.metadata.namespace!, key)) {
      return wait(
        WaitReason.WaitingForNamespaceSlot,
        `namespace ${snapshot.metadata.namespace} has ${cap.limit} snapshots in flight on this node`,
      );
    }
    if (!this.o.admission.claimDomain(domain, key)) {
      return wait(
        WaitReason.WaitingForDomainLock,
        `domain ${domain} is being snapshotted by ${this.o.admission.domainHolder(domain)}`,
      );
    }
    let info, xml;
    try {
      info = await this.o.hypervisor.domainInfo(domain, { timeoutMs: this.o.callTimeoutMs });
      xml = await this.o.hypervisor.domainXml(domain, { timeoutMs: this.o.callTimeoutMs });
    } catch (err) {
      return failed(this.now(), this.failure(err, `looking up domain ${domain}`));
    }
    const session = this.sessionFromXml(snapshot, xml);
    if ("reason" in session) return failed(this.now(), session);
    if (snapshot.spec.memory === true && this.o.tenancy) {
      try {
        const space = await checkMemorySpace({
          domainXml: xml,
          folder: this.o.memoryDir,
          reserveBytes: this.o.tenancy.memoryReserveBytes,
        });
        if (!space.allowed)
          return failed(this.now(), { reason: space.reason, message: space.message });
      } catch (err) {
        return failed(this.now(), this.failure(err, "measuring room for the memory image"));
      }
    }
    // The same object the later steps mark (armedHere, pausedHere): never a copy.
    session.uuid = info.uuid;
    this.sessions.set(snapshot.metadata.uid!, session);

    const now = this.now();
    if (info.state === "shutoff" || info.state === "crashed") {
      return unquiesced(
        { at: now, domainUUID: info.uuid },
        UnquiescedReason.DomainOffline,
        `domain ${domain} is ${info.state}: its disks are at rest`,
      );
    }
    if (info.state === "paused" || info.state === "pmsuspended") {
      return unquiesced(
        { at: now, domainUUID: info.uuid },
        UnquiescedReason.DomainPaused,
        `domain ${domain} is paused: its guest agent cannot freeze`,
      );
    }
    if (c.quiesce === "Disabled") {
      return unquiesced(
        { at: now, domainUUID: info.uuid },
        UnquiescedReason.QuiesceDisabled,
        "spec.quiesce is Disabled: the filesystems were not frozen",
      );
    }
    if (!hasGuestAgentChannel(xml)) {
      return unquiesced(
        { at: now, domainUUID: info.uuid },
        UnquiescedReason.NoGuestAgent,
        `domain ${domain} has no guest-agent channel (org.qemu.guest_agent.0)`,
      );
    }
    const silence = await this.agentSilence(domain);
    if (silence !== undefined)
      return unquiesced(
        { at: this.now(), domainUUID: info.uuid },
        UnquiescedReason.NoGuestAgent,
        silence,
      );
    if (!this.o.admission.claimFreezeSlot(key)) {
      return wait(
        WaitReason.WaitingForFreezeSlot,
        "this host already has its maximum of frozen guests",
      );
    }
    try {
      // Group membership and such are set up before the freeze, so the frozen window holds
      // only the snapshot itself. It honours spec.failureDeadline like every other step.
      const preparing = this.o.storage.prepare(
        { domain, domainUUID: info.uuid, name: snapshotNameOf(snapshot) },
        session.disks,
      );
      session.inFlight = preparing;
      const prepared = await raceDeadline(preparing, stepDeadlineOf(c) - this.now());
      if (prepared === "timeout") return tick(this.now());
      session.inFlight = undefined;
    } catch (err) {
      return failed(this.now(), this.failure(err, "preparing the disk snapshots"));
    }
    session.armedHere = true;
    const at = this.now();
    const uuid = this.sessions.get(snapshot.metadata.uid!)?.uuid;
    return {
      event: {
        type: "FREEZE_ARMED",
        at,
        freezeDeadline: at + c.freezeTimeoutMs,
        ...(uuid === undefined ? {} : { domainUUID: uuid }),
      },
    };
  }

  /** Forbidden unless this snapshot's namespace owns the domain (tenancy/); undefined if it may go on. */
  private async ownershipRefusal(snapshot: VMSnapshot): Promise<Outcome | undefined> {
    const tenancy = this.o.tenancy;
    if (!tenancy) return undefined;
    const domain = snapshot.spec.source.domain;
    const request = { namespace: snapshot.metadata.namespace!, domain, node: tenancy.node };
    let decision;
    try {
      decision = await checkOwnership(this.o.hypervisor, request, tenancy.unownedDomains, {
        timeoutMs: this.o.callTimeoutMs,
      });
    } catch (err) {
      return failed(this.now(), this.failure(err, `checking who owns domain ${domain}`));
    }
    if (decision.allowed) return undefined;
    // The cause is for operators; the tenant sees the one message that reveals nothing.
    this.o.log?.("refused: the namespace does not own the domain", {
      key: keyOf(snapshot),
      domain,
      detail: decision.logDetail,
    });
    return failed(this.now(), { reason: decision.reason, message: decision.message });
  }

  /** The freeze deadline is in status (write-ahead); hand it to the guard, then freeze. */
  async freeze(snapshot: VMSnapshot, c: SnapshotContext): Promise<Outcome> {
    const domain = snapshot.spec.source.domain;
    const session = this.sessions.get(snapshot.metadata.uid!);
    if (!session?.armedHere) {
      // Armed by a previous process, which may or may not have frozen: thaw to be sure.
      await this.thawQuietly(snapshot);
      return failed(this.now(), {
        reason: FailureReason.Interrupted,
        message: "the controller restarted while freezing the guest; the guest was thawed",
      });
    }
    const key = keyOf(snapshot);
    const remaining = c.freezeDeadline! - this.now();
    if (remaining < Math.min(MIN_FREEZE_WINDOW_MS, c.freezeTimeoutMs / 2)) {
      // The window written ahead has (nearly) passed without a freeze (the guard was away):
      // freezing now would only thaw again at once. The quiesce policy decides what follows.
      return unquiesced(
        this.now(),
        UnquiescedReason.FreezeFailed,
        "the freeze window passed before the thaw guard could be armed; the guest was not frozen",
      );
    }
    if (!this.o.admission.claimFreezeSlot(key)) {
      return wait(
        WaitReason.WaitingForFreezeSlot,
        "this host already has its maximum of frozen guests",
      );
    }
    // Before the freeze, so that only QEMU's arming is left for the pause.
    const unprepared = await this.prepareLiveMemory(snapshot, c, session);
    if (unprepared) {
      this.o.admission.releaseFreezeSlot(key);
      return unprepared;
    }
    try {
      await this.o.guard.arm({
        id: snapshot.metadata.uid!,
        domain,
        deadline: c.freezeDeadline!,
        resumeIfPaused: c.memory,
        ...this.pinnedIdentity(snapshot, c),
      });
    } catch (err) {
      // Never freeze without the guard: nothing would thaw the guest if this process died.
      this.o.admission.releaseFreezeSlot(key);
      return wait(
        WaitReason.WaitingForThawGuard,
        `the thaw guard is unavailable (${String(err)}); not freezing`,
      );
    }
    if (c.freezeDeadline! - this.now() < Math.min(MIN_FREEZE_WINDOW_MS, c.freezeTimeoutMs / 2)) {
      // Arming took the window (a slow guard, a stalled process): a freeze sent now would race
      // the guard's thaw. Nothing was frozen, so nothing is thawed.
      await this.disarmQuietly(snapshot);
      this.o.admission.releaseFreezeSlot(key);
      return unquiesced(
        this.now(),
        UnquiescedReason.FreezeFailed,
        "the freeze window passed while the thaw guard was being armed; the guest was not frozen",
      );
    }
    let frozen: number;
    try {
      frozen = await this.o.hypervisor.fsFreeze(domain, undefined, {
        timeoutMs: Math.max(1, c.freezeDeadline! - this.now()),
      });
    } catch (err) {
      if (err instanceof HypervisorError && err.reason === "AlreadyFrozen") {
        return this.frozenByOthers(snapshot, domain, err.message);
      }
      // A freeze that failed or timed out may still land in the guest later: always thaw.
      await this.thawQuietly(snapshot);
      this.o.admission.releaseFreezeSlot(key);
      return this.freezeFailure(err, domain);
    }
    if (frozen === 0) {
      return this.frozenByOthers(snapshot, domain, "the guest agent froze no filesystem");
    }
    return { event: { type: "FROZEN", at: this.now() } };
  }

  /**
   * The guest was frozen already, by someone else (an administrator, a backup tool): their
   * window is not ours to end, so it is left frozen; the guard is told the guest is not ours,
   * and the snapshot goes on (or not) as the quiesce policy says, never claiming the freeze.
   */
  private async frozenByOthers(
    snapshot: VMSnapshot,
    domain: string,
    detail: string,
  ): Promise<Outcome> {
    await this.disarmQuietly(snapshot);
    this.o.admission.releaseFreezeSlot(keyOf(snapshot));
    return unquiesced(
      this.now(),
      UnquiescedReason.FreezeFailed,
      `${domain} was already frozen by someone else (${detail}); vmsnap did not freeze it and leaves their freeze alone`,
    );
  }

  private freezeFailure(err: unknown, domain: string): Outcome {
    this.o.onError?.(err);
    const at = this.now();
    if (err instanceof HypervisorError) {
      const detail = `virDomainFSFreeze on ${domain}: ${describeHypervisorError(err)}`;
      switch (err.reason) {
        case "GuestAgentNotConfigured":
        case "GuestAgentUnresponsive":
          return unquiesced(at, UnquiescedReason.NoGuestAgent, detail);
        case "QuiesceHookFailed":
        case "Timeout":
        case "ProcessStalled":
          return unquiesced(at, UnquiescedReason.FreezeFailed, detail);
      }
    }
    return failed(at, failureFrom(err, `freezing ${domain}`)); // already counted above
  }

  async frozen(snapshot: VMSnapshot, c: SnapshotContext): Promise<Outcome> {
    if (!this.sessions.get(snapshot.metadata.uid!)?.armedHere) {
      return failed(this.now(), {
        reason: FailureReason.Interrupted,
        message:
          "the controller restarted while the guest was frozen; the guest was thawed and this attempt's artefacts removed",
      });
    }
    return this.snapshotDisks(snapshot, c);
  }

  /** Pauses the vCPUs for a VM snapshot, then snapshots every disk that takes part. */
  async snapshotDisks(snapshot: VMSnapshot, c: SnapshotContext): Promise<Outcome> {
    const domain = snapshot.spec.source.domain;
    const uid = snapshot.metadata.uid!;
    let session = this.sessions.get(uid);
    if (!session) {
      // An unfrozen attempt is safe to resume after a restart: take the inventory again.
      try {
        const xml = await this.o.hypervisor.domainXml(domain, { timeoutMs: this.o.callTimeoutMs });
        const fresh = this.sessionFromXml(snapshot, xml);
        if ("reason" in fresh) return failed(this.now(), fresh);
        fresh.uuid =
          c.domainUUID ??
          (await this.o.hypervisor.domainInfo(domain, { timeoutMs: this.o.callTimeoutMs })).uuid;
        session = fresh;
        this.sessions.set(uid, session);
      } catch (err) {
        return failed(this.now(), this.failure(err, `looking up domain ${domain}`));
      }
    }
    const frozen = c.frozenAt !== undefined;
    const deadline = stepDeadlineOf(c);
    let pausedAt: number | undefined;
    const pauses =
      c.memory &&
      c.unquiesced?.reason !== UnquiescedReason.DomainPaused &&
      c.unquiesced?.reason !== UnquiescedReason.DomainOffline;
    try {
      if (pauses) {
        const unprepared = await this.prepareLiveMemory(snapshot, c, session);
        if (unprepared) return unprepared;
        if (!frozen) {
          // Paused vCPUs need the guard too: it resumes them if this process dies.
          try {
            await this.o.guard.arm({
              id: uid,
              domain,
              deadline: this.now() + c.freezeTimeoutMs,
              resumeIfPaused: true,
              ...this.pinnedIdentity(snapshot, c),
            });
          } catch (err) {
            return wait(
              WaitReason.WaitingForThawGuard,
              `the thaw guard is unavailable (${String(err)}); not pausing`,
            );
          }
        }
        await this.o.hypervisor.suspend(domain, { timeoutMs: Math.max(1, deadline - this.now()) });
        session.pausedHere = true;
        pausedAt = this.now();
      }
      const creating = this.o.storage.create(
        { domain, ...withUUID(session.uuid), name: snapshotNameOf(snapshot) },
        session.disks,
      );
      session.inFlight = creating;
      const result = await raceDeadline(creating, deadline - this.now());
      if (result === "timeout") return tick(this.now());
      session.inFlight = undefined;
      const disks: DiskSnapshotHandle[] = result;
      return {
        event: {
          type: "DISKS_SNAPSHOTTED",
          at: this.now(),
          disks,
          ...(pausedAt !== undefined ? { pausedAt } : {}),
        },
      };
    } catch (err) {
      return failed(this.now(), this.failure(err, `snapshotting the disks of ${domain}`));
    }
  }

  /**
   * Succeeds once the disk snapshots are checked to hold what status records (the RBD group's
   * members, after the thaw, see storage/rbd/backend.ts); a failure removes them.
   */
  async complete(snapshot: VMSnapshot, c: SnapshotContext): Promise<Outcome> {
    try {
      await this.o.storage.verify(c.disks);
    } catch (err) {
      return failed(this.now(), this.failure(err, "checking what the disk snapshots hold"));
    }
    let definition;
    try {
      definition = await this.keepDefinition(snapshot, c);
    } catch (err) {
      return failed(this.now(), this.failure(err, "keeping the domain definition with the disks"));
    }
    return { event: { type: "COMPLETED", at: this.now(), ...(definition ? { definition } : {}) } };
  }

  /**
   * Keeps the domain's definition (inactive XML, secrets included) with the disk snapshots, so
   * a restore defines the VM as it was now, also once the domain is changed or gone, and on
   * another node for RBD disks. After the thaw: it costs one storage call (one `rbd` start).
   * Only the pinned domain's: one redefined under the same name since is not this snapshot's.
   */
  private async keepDefinition(snapshot: VMSnapshot, c: SnapshotContext) {
    if (c.disks.length === 0) return undefined;
    const domain = snapshot.spec.source.domain;
    const pinned = this.sessions.get(snapshot.metadata.uid!)?.uuid ?? c.domainUUID;
    const timeout = { timeoutMs: this.o.callTimeoutMs };
    if (
      pinned !== undefined &&
      (await this.o.hypervisor.domainInfo(domain, timeout)).uuid !== pinned
    ) {
      throw new HypervisorError(
        `domain ${domain} is no longer the domain ${pinned} this snapshot was taken of`,
        { reason: "DomainNotFound", operation: "domainXml", target: domain },
      );
    }
    const xml = await this.o.hypervisor.domainXml(domain, {
      ...timeout,
      flags: DomainXmlFlags.Inactive | DomainXmlFlags.Secure,
    });
    return this.o.storage.storeDefinition(snapshotNameOf(snapshot), c.disks, xml);
  }

  async saveMemory(snapshot: VMSnapshot, c: SnapshotContext): Promise<Outcome> {
    const domain = snapshot.spec.source.domain;
    const session = this.sessions.get(snapshot.metadata.uid!);
    if (c.pausedAt !== undefined && !session?.pausedHere) {
      return failed(this.now(), {
        reason: FailureReason.Interrupted,
        message:
          "the controller restarted while the vCPUs were paused; they were resumed, so RAM no longer matches the disks",
      });
    }
    const deadline = stepDeadlineOf(c);
    try {
      const memory = await this.o.memory.save({
        domain,
        name: snapshotNameOf(snapshot),
        file: this.memoryFileOf(snapshot),
        diskTargets: session?.allTargets ?? [],
        timeoutMs: Math.max(1, deadline - this.now()),
      });
      let resumedAt = this.now();
      if (c.pausedAt !== undefined) {
        await this.o.hypervisor.resume(domain, { timeoutMs: this.o.callTimeoutMs });
        resumedAt = this.now();
        if (session) session.pausedHere = false;
        // An unfrozen VM snapshot armed the guard only for the pause.
        if (c.frozenAt === undefined) await this.disarmQuietly(snapshot);
      }
      return { event: { type: "MEMORY_SAVED", at: this.now(), memory, resumedAt } };
    } catch (err) {
      return failed(this.now(), this.failure(err, `saving the memory of ${domain}`));
    }
  }

  /** Live memory, before the pause: header, capability and file handed to QEMU (idempotent). */
  private async prepareLiveMemory(
    snapshot: VMSnapshot,
    c: SnapshotContext,
    session: Session,
  ): Promise<Outcome | undefined> {
    if (!savesMemoryLive(c) || session.livePrepared) return undefined;
    const domain = snapshot.spec.source.domain;
    if (!this.o.liveMemory) {
      return failed(this.now(), NO_LIVE_MEMORY);
    }
    try {
      await this.o.liveMemory.prepare({
        domain,
        file: this.memoryFileOf(snapshot),
        timeoutMs: this.o.callTimeoutMs,
      });
      session.livePrepared = true;
      return undefined;
    } catch (err) {
      return failed(
        this.now(),
        this.failure(err, `preparing the live memory snapshot of ${domain}`),
      );
    }
  }

  /**
   * Live memory, vCPUs paused and disks taken: QEMU captures RAM (write tracking armed) and runs
   * the vCPUs again itself; resolves once it has, so disks and RAM are the pause's instant.
   */
  async captureMemory(snapshot: VMSnapshot, c: SnapshotContext): Promise<Outcome> {
    const domain = snapshot.spec.source.domain;
    const session = this.sessions.get(snapshot.metadata.uid!);
    if (!session?.pausedHere || !session.livePrepared || !this.o.liveMemory) {
      return failed(this.now(), {
        reason: FailureReason.Interrupted,
        message:
          "the controller restarted while the vCPUs were paused; they were resumed, so RAM no longer matches the disks",
      });
    }
    try {
      await this.o.liveMemory.arm({
        domain,
        file: this.memoryFileOf(snapshot),
        timeoutMs: Math.max(1, stepDeadlineOf(c) - this.now()),
      });
    } catch (err) {
      return failed(this.now(), this.failure(err, `capturing the memory of ${domain}`));
    }
    const at = this.now();
    session.pausedHere = false;
    // An unfrozen VM snapshot armed the guard only for the pause.
    if (c.frozenAt === undefined) await this.disarmQuietly(snapshot);
    return { event: { type: "MEMORY_CAPTURED", at } };
  }

  /**
   * Live memory, the guest running (and thawed): waits for QEMU to write the captured RAM and
   * marks the image complete. A restarted agent picks this up where it was: QEMU keeps writing
   * through its own descriptor whatever happens to this process.
   */
  async writeMemory(snapshot: VMSnapshot, c: SnapshotContext): Promise<Outcome> {
    const domain = snapshot.spec.source.domain;
    if (!this.o.liveMemory) {
      return failed(this.now(), NO_LIVE_MEMORY);
    }
    try {
      const image = await this.o.liveMemory.finish({
        domain,
        file: this.memoryFileOf(snapshot),
        timeoutMs: Math.max(1, stepDeadlineOf(c) - this.now()),
      });
      return {
        event: {
          type: "MEMORY_SAVED",
          at: this.now(),
          memory: { file: image.file, bytes: image.bytes, mode: "Live" },
          resumedAt: c.resumedAt!,
        },
      };
    } catch (err) {
      return failed(this.now(), this.failure(err, `writing the memory of ${domain}`));
    }
  }

  async thaw(snapshot: VMSnapshot): Promise<Outcome> {
    const domain = snapshot.spec.source.domain;
    // The domain frozen, by its pinned UUID: a same-named replacement is not thawed (or counted).
    const result = await thawGuest(
      this.o.hypervisor,
      domain,
      false,
      this.thawPolicy,
      this.pinnedIdentity(snapshot),
    );
    if (result.outcome !== "thawed") {
      // The guard stays armed: it thaws at the deadline if the compensating thaw fails too.
      return failed(this.now(), this.failure(result.lastError, `thawing ${domain}`));
    }
    const at = this.now();
    await this.disarmQuietly(snapshot);
    this.o.admission.releaseFreezeSlot(keyOf(snapshot));
    return { event: { type: "THAWED", at } };
  }

  // ---- helpers --------------------------------------------------------------------------

  private failure(err: unknown, doing: string): Failure {
    this.o.onError?.(err);
    return failureFrom(err, doing);
  }

  /**
   * Thaws (resuming first when asked) with a few quick tries, never throwing. `done` when the
   * guest is known thawed or stopped: the guard is disarmed. Otherwise the guard stays armed
   * and thaws at the deadline.
   */
  /** The UUID this attempt pinned at its first look-up, for every later thaw (`{}` if none). */
  private pinnedIdentity(snapshot: VMSnapshot, c?: SnapshotContext): { uuid?: string } {
    const uuid = this.sessions.get(snapshot.metadata.uid!)?.uuid ?? c?.domainUUID;
    return uuid === undefined ? {} : { uuid };
  }

  private async thawQuietly(
    snapshot: VMSnapshot,
    resumeIfPaused = false,
  ): Promise<{ done: boolean; resumed: boolean; outcome: ThawOutcome; error?: string }> {
    const domain = snapshot.spec.source.domain;
    const result = await thawGuest(
      this.o.hypervisor,
      domain,
      resumeIfPaused,
      this.thawPolicy,
      this.pinnedIdentity(snapshot),
    );
    if (result.lastError !== undefined) this.o.onError?.(result.lastError);
    // "lost" too: a domain not found may be frozen elsewhere; the guard stays armed, and its
    // report at the deadline is the final word.
    if (!thawConfirmed(result.outcome)) {
      this.o.log?.("thaw not confirmed; the guard will retry at the deadline", {
        domain,
        outcome: result.outcome,
        attempts: result.attempts,
        error: result.error,
      });
      return {
        done: false,
        resumed: result.resumed,
        outcome: result.outcome,
        ...(result.error === undefined ? {} : { error: result.error }),
      };
    }
    await this.disarmQuietly(snapshot);
    return { done: true, resumed: result.resumed, outcome: result.outcome };
  }

  /** Disarms after a thaw; a guard that cannot be told merely thaws a thawed guest later. */
  private async disarmQuietly(snapshot: VMSnapshot): Promise<void> {
    try {
      await this.o.guard.disarm(snapshot.metadata.uid!);
    } catch (err) {
      this.o.log?.(
        "could not disarm the thaw guard (harmless: thawing a thawed guest is a no-op)",
        {
          key: keyOf(snapshot),
          error: String(err),
        },
      );
    }
  }

  /**
   * Why the guest agent must not be asked to freeze now, or undefined when it answered a ping
   * (or the driver cannot be asked; the freeze then decides). Measured on libvirt 9.0 with an
   * agent that hangs after it had answered before: libvirt skips its 5 s guest-sync and sends
   * the freeze with no timeout, so the call blocks, holds the domain's agent job (every thaw,
   * the guard's too, times out behind it), and the freeze lands whenever the agent wakes up,
   * long after everyone gave up: the guest stays frozen. A ping that times out is harmless when
   * it lands late, and it makes libvirt sync again before the next agent call.
   */
  private async agentSilence(domain: string): Promise<string | undefined> {
    try {
      await this.o.hypervisor.guestPing(domain, { timeoutMs: AGENT_PROBE_TIMEOUT_MS });
      return undefined;
    } catch (err) {
      if (!(err instanceof HypervisorError)) return undefined;
      switch (err.reason) {
        case "GuestAgentNotConfigured":
        case "GuestAgentUnresponsive":
        case "Timeout":
        case "ProcessStalled":
          this.o.onError?.(err);
          return `the guest agent of ${domain} did not answer guest-ping (waited up to ${AGENT_PROBE_TIMEOUT_MS} ms), so no freeze was sent: ${describeHypervisorError(err)}`;
        default:
          return undefined;
      }
    }
  }

  /** Resumes the vCPUs if they are paused; true when it did. */
  private resumeIfPaused(domain: string): Promise<boolean> {
    return resumeIfPaused(this.o.hypervisor, domain, this.o.callTimeoutMs);
  }

  /** The disks that take part, or the failure that stops the snapshot before it starts. */
  private sessionFromXml(snapshot: VMSnapshot, xml: string): Session | Failure {
    const all = parseDisks(xml);
    const excluded = new Set(snapshot.spec.disks?.exclude ?? []);
    const blocking = all.filter((d) => d.plan.backend === "unsupported" && !excluded.has(d.target));
    if (blocking.length > 0) {
      return {
        reason: FailureReason.UnsupportedDisk,
        message:
          blocking.map((d) => `${d.target}: ${(d.plan as { reason: string }).reason}`).join("; ") +
          ". List such disks in spec.disks.exclude to snapshot the others.",
      };
    }
    const disks = all.filter((d) => !excluded.has(d.target));
    if (disks.length === 0) {
      return {
        reason: FailureReason.InvalidSpec,
        message: "spec.disks.exclude leaves no disk to snapshot",
      };
    }
    return { disks, allTargets: all.map((d) => d.target), armedHere: false, pausedHere: false };
  }

  /** For removal without a session: the domain's current disks and UUID (none when it is gone). */
  private async currentDomain(domain: string): Promise<{ disks: Disk[]; uuid?: string }> {
    try {
      const timeout = { timeoutMs: this.o.callTimeoutMs };
      const disks = parseDisks(await this.o.hypervisor.domainXml(domain, timeout));
      return { disks, uuid: (await this.o.hypervisor.domainInfo(domain, timeout)).uuid };
    } catch {
      return { disks: [] };
    }
  }

  private memoryFileOf(snapshot: VMSnapshot): string {
    return join(this.o.memoryDir, `${snapshotNameOf(snapshot)}.mem`);
  }
}

/** `{ domainUUID }` when known, else nothing (an optional field is absent, never undefined). */
function withUUID(uuid: string | undefined): { domainUUID?: string } {
  return uuid === undefined ? {} : { domainUUID: uuid };
}

/**
 * Whether this attempt did anything to the domain: a freeze armed, the no-freeze decision made,
 * a disk or memory snapshot taken. Every one of those comes after the ownership check.
 */
function startedWork(context: SnapshotContext): boolean {
  return (
    context.freezeDeadline !== undefined ||
    context.quiesced !== undefined ||
    context.disks.length > 0 ||
    context.memoryImage !== undefined
  );
}

function tick(at: number): Outcome {
  return { event: { type: "TICK", at } };
}

function failed(at: number, failure: Failure): Outcome {
  return { event: { type: "FAILED", at, reason: failure.reason, message: failure.message } };
}

function unquiesced(
  when: number | { at: number; domainUUID: string },
  reason: UnquiescedReason,
  message: string,
): Outcome {
  const facts = typeof when === "number" ? { at: when } : when;
  return { event: { type: "UNQUIESCED", ...facts, reason, message } };
}

function wait(reason: WaitReason, message: string): Outcome {
  return { wait: { reason, message }, retryAfterMs: WAIT_RETRY_MS };
}

/** Resolves with the promise's value, or "timeout" once `ms` pass (the promise keeps running). */
async function raceDeadline<T>(promise: Promise<T>, ms: number): Promise<T | "timeout"> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<"timeout">((resolve) => {
    timer = setTimeout(() => resolve("timeout"), Math.max(0, ms));
  });
  try {
    return await Promise.race([promise, deadline]);
  } finally {
    clearTimeout(timer);
  }
}
