// The effect of each phase: what vmsnap does to libvirt and Ceph to move a snapshot on, and the
// event that reports how it went. Every effect is idempotent (names derive from the VMSnapshot
// UID), every call has a deadline, and the decisions (policy, deadlines, what to undo) are the
// phase machine's, not this module's.
//
// An attempt's in-memory session records what only this process can know: that it armed the
// freeze itself and which disks take part. A frozen phase found without a session belongs to a
// previous controller process; its guard (or the startup recovery) has thawed the guest, so the
// attempt cannot go on consistently and fails as Interrupted, with its artefacts removed.
import { join } from "node:path";
import { FailureReason, UnquiescedReason, WaitReason } from "../api/reasons.ts";
import type { VMSnapshot } from "../api/types.ts";
import type { Hypervisor } from "../hypervisor/connection.ts";
import type { Disk } from "../hypervisor/disk.ts";
import { parseDisks } from "../hypervisor/disk-inventory.ts";
import { HypervisorError } from "../hypervisor/errors.ts";
import { hasGuestAgentChannel } from "../hypervisor/guest-agent-channel.ts";
import { checkMemorySpace } from "../limits/check-memory-space.ts";
import type { NamespaceCap } from "../limits/namespace-cap.ts";
import { mayBeFrozen, type SnapshotContext } from "../machine/context.ts";
import type { SnapshotEvent } from "../machine/events.ts";
import type { Compensation } from "../machine/machine.ts";
import type { MachineState } from "../machine/step.ts";
import type { DiskSnapshotHandle, SnapshotRequest } from "../storage/backend.ts";
import { checkOwnership } from "../tenancy/check-ownership.ts";
import type { UnownedDomainPolicy } from "../tenancy/unowned-policy.ts";
import type { Admission } from "./admission.ts";
import { failureFrom, type Failure } from "./failures.ts";
import type { HypervisorPort, MemoryImagePort, StoragePorts, ThawGuardPort } from "./ports.ts";
import type { Waiting } from "./status.ts";

export type Outcome =
  { readonly event: SnapshotEvent } | { readonly wait: Waiting; readonly retryAfterMs: number };

export interface EffectsOptions {
  /** Plus guestPing: the agent is asked, with a deadline, before it is asked to freeze. */
  readonly hypervisor: HypervisorPort & Pick<Hypervisor, "guestPing">;
  readonly storage: StoragePorts;
  readonly memory: MemoryImagePort;
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
  disks: Disk[];
  allTargets: string[];
  armedHere: boolean;
  pausedHere: boolean;
  /** A storage call that may still be running after its deadline: removal waits for it. */
  inFlight?: Promise<unknown>;
}

const WAIT_RETRY_MS = 1_000;
/** A freeze is not started with less of its window left than this (or half the timeout). */
const MIN_FREEZE_WINDOW_MS = 1_000;
/** How long the agent may take to answer guest-ping before a freeze: libvirt's own sync wait. */
const AGENT_PROBE_TIMEOUT_MS = 5_000;

/** The backend snapshot name of a VMSnapshot: derived from its UID, so retries are no-ops. */
export function snapshotNameOf(snapshot: VMSnapshot): string {
  return `vmsnap-${snapshot.metadata.uid}`;
}

export function keyOf(snapshot: VMSnapshot): string {
  return `${snapshot.metadata.namespace}/${snapshot.metadata.name}`;
}

export class SnapshotEffects {
  private readonly sessions = new Map<string, Session>();
  private readonly now: () => number;

  constructor(private readonly o: EffectsOptions) {
    this.now = o.now ?? Date.now;
  }

  /** Runs the effect of the current phase and reports its outcome as one event (or a wait). */
  async run(snapshot: VMSnapshot, state: MachineState): Promise<Outcome> {
    const c = state.context;
    const now = this.now();
    // Deadlines first: an effect never starts once its budget is spent.
    if (now > c.startedAt + c.failureDeadlineMs) return tick(now);
    if (c.frozenAt !== undefined && mayBeFrozen(c) && now > c.freezeDeadline!) return tick(now);
    switch (state.phase) {
      case "Pending":
        return this.pending(snapshot, c);
      case "Frozen":
        return this.frozen(snapshot, c);
      case "DisksSnapshotted":
        return this.disksSnapshotted(snapshot, c);
      case "MemorySaved":
        return c.frozenAt !== undefined ? this.thaw(snapshot) : completed(this.now());
      case "Thawed":
        return completed(this.now());
      default:
        throw new Error(`no effect for final phase ${state.phase}`);
    }
  }

  /**
   * Runs the compensations a failure asked for, in order; each one is best effort. Reports when
   * the guest was thawed and resumed, so status can tell how long a failed attempt held it.
   */
  async compensate(
    snapshot: VMSnapshot,
    state: MachineState,
    actions: readonly Compensation[],
  ): Promise<{ thawedAt?: number; resumedAt?: number }> {
    const domain = snapshot.spec.source.domain;
    const done: { thawedAt?: number; resumedAt?: number } = {};
    // Nothing to undo before the work started, and no call to make on a domain whose ownership
    // may never have been checked (a Forbidden snapshot, or one deleted before its first look):
    // thawing or resuming it would undo what its owner did.
    const todo = startedWork(state.context) ? actions : [];
    for (const action of todo) {
      try {
        if (action === "resumeVcpus" && (await this.resumeIfPaused(domain)))
          done.resumedAt = this.now();
        if (action === "thaw" && (await this.thawQuietly(snapshot))) done.thawedAt = this.now();
        if (action === "removeArtefacts") await this.removeArtefacts(snapshot, state.context);
      } catch (err) {
        this.o.log?.("compensation failed", { key: keyOf(snapshot), action, error: String(err) });
      }
    }
    this.o.admission.releaseFreezeSlot(keyOf(snapshot));
    return done;
  }

  /** Removes everything a finished snapshot owns (deletion with deletionPolicy Delete). */
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
    const disks = session?.disks ?? (await this.inventoryOrHandles(domain, context.disks));
    const request = (backend: "rbd" | "libvirt-file"): SnapshotRequest => ({
      domain,
      name,
      disks: disks.filter((d) => d.plan.backend === backend),
    });
    await this.o.storage.rbd.remove(request("rbd"));
    await this.o.storage.file.remove(request("libvirt-file"));
    await this.o.memory.remove({ domain, name, file: this.memoryFileOf(snapshot) });
  }

  /** Forgets the attempt: its domain, freeze slot and session. */
  finish(snapshot: VMSnapshot): void {
    this.sessions.delete(snapshot.metadata.uid!);
    this.o.admission.release(snapshot.spec.source.domain, keyOf(snapshot));
    this.o.tenancy?.namespaceCap?.release(keyOf(snapshot));
  }

  // ---- phases ---------------------------------------------------------------------------

  private async pending(snapshot: VMSnapshot, c: SnapshotContext): Promise<Outcome> {
    if (c.quiesced === undefined && c.freezeDeadline === undefined)
      return this.inspect(snapshot, c);
    if (c.quiesced === undefined) return this.freeze(snapshot, c);
    return this.snapshotDisks(snapshot, c, false);
  }

  /** Looks at the domain, claims it, and decides: freeze (armed first), or why not. */
  private async inspect(snapshot: VMSnapshot, c: SnapshotContext): Promise<Outcome> {
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
    this.sessions.set(snapshot.metadata.uid!, session);

    const now = this.now();
    if (info.state === "shutoff" || info.state === "crashed") {
      return unquiesced(
        now,
        UnquiescedReason.DomainOffline,
        `domain ${domain} is ${info.state}: its disks are at rest`,
      );
    }
    if (info.state === "paused" || info.state === "pmsuspended") {
      return unquiesced(
        now,
        UnquiescedReason.DomainPaused,
        `domain ${domain} is paused: its guest agent cannot freeze`,
      );
    }
    if (c.quiesce === "Disabled") {
      return unquiesced(
        now,
        UnquiescedReason.QuiesceDisabled,
        "spec.quiesce is Disabled: the filesystems were not frozen",
      );
    }
    if (!hasGuestAgentChannel(xml)) {
      return unquiesced(
        now,
        UnquiescedReason.NoGuestAgent,
        `domain ${domain} has no guest-agent channel (org.qemu.guest_agent.0)`,
      );
    }
    const silence = await this.agentSilence(domain);
    if (silence !== undefined)
      return unquiesced(this.now(), UnquiescedReason.NoGuestAgent, silence);
    if (!this.o.admission.claimFreezeSlot(key)) {
      return wait(
        WaitReason.WaitingForFreezeSlot,
        "this host already has its maximum of frozen guests",
      );
    }
    try {
      // Group membership and such are set up before the freeze, so the frozen window holds
      // only the snapshot itself.
      await this.o.storage.rbd.prepare?.(this.request(snapshot, session.disks, "rbd"));
    } catch (err) {
      return failed(this.now(), this.failure(err, "preparing the RBD snapshot"));
    }
    session.armedHere = true;
    const at = this.now();
    return { event: { type: "FREEZE_ARMED", at, freezeDeadline: at + c.freezeTimeoutMs } };
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
  private async freeze(snapshot: VMSnapshot, c: SnapshotContext): Promise<Outcome> {
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
    try {
      await this.o.guard.arm({
        id: snapshot.metadata.uid!,
        domain,
        deadline: c.freezeDeadline!,
        resumeIfPaused: c.memory,
      });
    } catch (err) {
      // Never freeze without the guard: nothing would thaw the guest if this process died.
      this.o.admission.releaseFreezeSlot(key);
      return wait(
        WaitReason.WaitingForThawGuard,
        `the thaw guard is unavailable (${String(err)}); not freezing`,
      );
    }
    try {
      await this.o.hypervisor.fsFreeze(domain, undefined, {
        timeoutMs: Math.max(1, c.freezeDeadline! - this.now()),
      });
      return { event: { type: "FROZEN", at: this.now() } };
    } catch (err) {
      // A freeze that failed or timed out may still land in the guest later: always thaw.
      await this.thawQuietly(snapshot);
      this.o.admission.releaseFreezeSlot(keyOf(snapshot));
      return this.freezeFailure(err, domain);
    }
  }

  private freezeFailure(err: unknown, domain: string): Outcome {
    this.o.onError?.(err);
    const at = this.now();
    if (err instanceof HypervisorError) {
      const detail = `virDomainFSFreeze on ${domain}: libvirt error ${err.code} (${err.reason}): ${err.message}`;
      switch (err.reason) {
        case "GuestAgentNotConfigured":
        case "GuestAgentUnresponsive":
          return unquiesced(at, UnquiescedReason.NoGuestAgent, detail);
        case "QuiesceHookFailed":
        case "AlreadyFrozen":
        case "Timeout":
          return unquiesced(at, UnquiescedReason.FreezeFailed, detail);
      }
    }
    return failed(at, failureFrom(err, `freezing ${domain}`)); // already counted above
  }

  private async frozen(snapshot: VMSnapshot, c: SnapshotContext): Promise<Outcome> {
    if (!this.sessions.get(snapshot.metadata.uid!)?.armedHere) {
      return failed(this.now(), {
        reason: FailureReason.Interrupted,
        message:
          "the controller restarted while the guest was frozen; the guest was thawed and this attempt's artefacts removed",
      });
    }
    return this.snapshotDisks(snapshot, c, true);
  }

  /** Pauses the vCPUs for a VM snapshot, then snapshots every disk that takes part. */
  private async snapshotDisks(
    snapshot: VMSnapshot,
    c: SnapshotContext,
    frozen: boolean,
  ): Promise<Outcome> {
    const domain = snapshot.spec.source.domain;
    const uid = snapshot.metadata.uid!;
    let session = this.sessions.get(uid);
    if (!session) {
      // An unfrozen attempt is safe to resume after a restart: take the inventory again.
      try {
        const xml = await this.o.hypervisor.domainXml(domain, { timeoutMs: this.o.callTimeoutMs });
        const fresh = this.sessionFromXml(snapshot, xml);
        if ("reason" in fresh) return failed(this.now(), fresh);
        session = fresh;
        this.sessions.set(uid, session);
      } catch (err) {
        return failed(this.now(), this.failure(err, `looking up domain ${domain}`));
      }
    }
    const deadline = frozen ? c.freezeDeadline! : c.startedAt + c.failureDeadlineMs;
    let pausedAt: number | undefined;
    const pauses =
      c.memory &&
      c.unquiesced?.reason !== UnquiescedReason.DomainPaused &&
      c.unquiesced?.reason !== UnquiescedReason.DomainOffline;
    try {
      if (pauses) {
        if (!frozen) {
          // Paused vCPUs need the guard too: it resumes them if this process dies.
          try {
            await this.o.guard.arm({
              id: uid,
              domain,
              deadline: this.now() + c.freezeTimeoutMs,
              resumeIfPaused: true,
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
      const creating = Promise.all([
        this.o.storage.rbd.create(this.request(snapshot, session.disks, "rbd")),
        this.o.storage.file.create(this.request(snapshot, session.disks, "libvirt-file")),
      ]);
      session.inFlight = creating;
      const result = await raceDeadline(creating, deadline - this.now());
      if (result === "timeout") return tick(this.now());
      session.inFlight = undefined;
      const disks: DiskSnapshotHandle[] = result.flat();
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

  private async disksSnapshotted(snapshot: VMSnapshot, c: SnapshotContext): Promise<Outcome> {
    if (c.memory) return this.saveMemory(snapshot, c);
    if (c.frozenAt !== undefined) return this.thaw(snapshot);
    return completed(this.now());
  }

  private async saveMemory(snapshot: VMSnapshot, c: SnapshotContext): Promise<Outcome> {
    const domain = snapshot.spec.source.domain;
    const session = this.sessions.get(snapshot.metadata.uid!);
    if (c.pausedAt !== undefined && !session?.pausedHere) {
      return failed(this.now(), {
        reason: FailureReason.Interrupted,
        message:
          "the controller restarted while the vCPUs were paused; they were resumed, so RAM no longer matches the disks",
      });
    }
    const deadline =
      c.frozenAt !== undefined ? c.freezeDeadline! : c.startedAt + c.failureDeadlineMs;
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

  private async thaw(snapshot: VMSnapshot): Promise<Outcome> {
    const domain = snapshot.spec.source.domain;
    try {
      await this.o.hypervisor.fsThaw(domain, { timeoutMs: this.o.callTimeoutMs });
    } catch (err) {
      // The guard stays armed: it thaws at the deadline if the compensating thaw fails too.
      return failed(this.now(), this.failure(err, `thawing ${domain}`));
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

  /** Thaws, never throwing; true when the guest is known thawed (or gone). */
  private async thawQuietly(snapshot: VMSnapshot): Promise<boolean> {
    const domain = snapshot.spec.source.domain;
    try {
      await this.o.hypervisor.fsThaw(domain, { timeoutMs: this.o.callTimeoutMs });
    } catch (err) {
      this.o.onError?.(err);
      const gone =
        err instanceof HypervisorError &&
        (err.reason === "DomainNotFound" || err.reason === "DomainNotRunning");
      if (!gone) {
        // The guard stays armed: it thaws at the deadline.
        this.o.log?.("thaw failed; the guard will retry at the deadline", {
          domain,
          error: String(err),
        });
        return false;
      }
    }
    await this.disarmQuietly(snapshot);
    return true;
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
          this.o.onError?.(err);
          return `the guest agent of ${domain} did not answer guest-ping (waited up to ${AGENT_PROBE_TIMEOUT_MS} ms), so no freeze was sent: libvirt error ${err.code} (${err.reason}): ${err.message}`;
        default:
          return undefined;
      }
    }
  }

  /** Resumes the vCPUs if they are paused; true when it did. */
  private async resumeIfPaused(domain: string): Promise<boolean> {
    const info = await this.o.hypervisor.domainInfo(domain, { timeoutMs: this.o.callTimeoutMs });
    if (info.state !== "paused") return false;
    await this.o.hypervisor.resume(domain, { timeoutMs: this.o.callTimeoutMs });
    return true;
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

  /** For removal without a session: the domain's current disks, else what status recorded. */
  private async inventoryOrHandles(
    domain: string,
    handles: readonly DiskSnapshotHandle[],
  ): Promise<Disk[]> {
    try {
      return parseDisks(
        await this.o.hypervisor.domainXml(domain, { timeoutMs: this.o.callTimeoutMs }),
      );
    } catch {
      return handles.map(diskFromHandle);
    }
  }

  private request(
    snapshot: VMSnapshot,
    disks: readonly Disk[],
    backend: "rbd" | "libvirt-file",
  ): SnapshotRequest {
    return {
      domain: snapshot.spec.source.domain,
      name: snapshotNameOf(snapshot),
      disks: disks.filter((d) => d.plan.backend === backend),
    };
  }

  private memoryFileOf(snapshot: VMSnapshot): string {
    return join(this.o.memoryDir, `${snapshotNameOf(snapshot)}.mem`);
  }
}

/** A disk as status recorded it, enough for a backend to find and remove its snapshot. */
export function diskFromHandle(handle: DiskSnapshotHandle): Disk {
  const base = { target: handle.target, device: "disk", readonly: false, shareable: false };
  if (handle.backend === "rbd") {
    const parts = handle.source.split("/");
    const [pool, namespace, image] = parts.length === 3 ? parts : [parts[0], undefined, parts[1]];
    return {
      ...base,
      type: "network",
      plan: {
        backend: "rbd",
        rbd: { pool: pool!, ...(namespace ? { namespace } : {}), image: image!, monitors: [] },
      },
    };
  }
  return {
    ...base,
    type: "file",
    plan: { backend: "libvirt-file", file: { path: handle.source } },
  };
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

function completed(at: number): Outcome {
  return { event: { type: "COMPLETED", at } };
}

function failed(at: number, failure: Failure): Outcome {
  return { event: { type: "FAILED", at, reason: failure.reason, message: failure.message } };
}

function unquiesced(at: number, reason: UnquiescedReason, message: string): Outcome {
  return { event: { type: "UNQUIESCED", at, reason, message } };
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
