// The I/O of each VMRestore step. Each effect is idempotent (a restarted agent runs it again from
// the recorded phase) and reports one event; the machine decides what follows.
//
// In place: the target stopped (only with spec.stopRunningTarget), its disks reverted (RBD
// rollback, a new qcow2 overlay per file disk), then either the RAM image restored paused under
// an XML whose disks point at the restored images, the thaw guard armed for the recorded
// thawDeadline, resumed and thawed at once (a RAM image taken while frozen wakes up frozen), or,
// disks only, the definition updated and the domain started per spec.powerState.
// To a new domain: copies of the disks, a definition with a new name and UUID, a cold boot.
import {
  consistencyOf,
  inUseFinalizer,
  RestoreFailureReason,
  type VMRestore,
} from "../api/restore-types.ts";
import type { VMSnapshot } from "../api/types.ts";
import { monotonicNow } from "../clock.ts";
import type { Outcome as KindOutcome, Waiting } from "../controller/kind.ts";
import { HypervisorError } from "../hypervisor/errors.ts";
import { DomainXmlFlags, SaveRestoreFlags, StartFlags } from "../hypervisor/flags.ts";
import { thawAndConfirm } from "../hypervisor/memory-restore.ts";
import { readThawRecord, writeThawRecord, type ThawRecord } from "../hypervisor/thaw-record.ts";
import { restoreDomainXml, type RestoredDisk } from "../hypervisor/restore-xml.ts";
import { DEFAULT_THAW_POLICY, thawGuest } from "../hypervisor/thaw.ts";
import { ConflictError } from "../kube/object-client.ts";
import { objectKey } from "../kube/resource.ts";
import type { Admission } from "../snapshot/admission.ts";
import type { ThawGuardPort } from "../snapshot/ports.ts";
import type { RestoredDiskHandle } from "../storage/backend.ts";
import type { StorageRegistry } from "../storage/registry.ts";
import { checkOwnership } from "../tenancy/check-ownership.ts";
import type { UnownedDomainPolicy } from "../tenancy/unowned-policy.ts";
import { awaitingThaw, type RestoreContext } from "./context.ts";
import type { RestoreEvent } from "./events.ts";
import { DefinitionMissing, restoreFailureFrom } from "./failures.ts";
import type { RestoreHypervisorPort, SnapshotSource } from "./ports.ts";
import { isFinalRestore, type RestoreCompensation, type RestoreState } from "./step.ts";

export type RestoreOutcome = KindOutcome<RestoreEvent>;

export interface RestoreEffectsOptions {
  /** This host's node name: the restores of its snapshots are this agent's. */
  readonly node: string;
  readonly hypervisor: RestoreHypervisorPort;
  readonly storage: StorageRegistry;
  readonly snapshots: SnapshotSource;
  readonly guard: ThawGuardPort;
  /** Shared with the snapshot effects: one snapshot or restore per domain at a time. */
  readonly admission: Admission;
  readonly callTimeoutMs: number;
  /** Who may restore which domain (src/tenancy); absent: anyone. */
  readonly tenancy?: { readonly unownedDomains: UnownedDomainPolicy };
  readonly now?: () => number;
  readonly log?: (message: string, fields: Record<string, unknown>) => void;
}

type Effect = (e: RestoreEffects, r: VMRestore, c: RestoreContext) => Promise<RestoreOutcome>;

/** The effect of each step of the machine (src/restore/machine.ts). */
const EFFECTS: Record<string, Effect> = {
  "Pending.Validating": (e, r, c) => e.validate(r, c),
  "Pending.Stopping": (e, r, c) => e.stopTarget(r, c),
  "Pending.RestoringDisks": (e, r, c) => e.restoreDisks(r, c),
  TargetStopped: (e, r, c) => e.restoreDisks(r, c),
  "DisksRestored.RestoringMemory": (e, r, c) => e.restoreMemory(r, c),
  "DisksRestored.Defining": (e, r, c) => e.defineAndStart(r, c),
  MemoryRestored: (e, r, c) => e.resume(r, c),
  Resumed: (e, r, c) => e.thaw(r, c),
  Thawed: (e, r, c) => e.settleDefinition(r, c),
};

const GUARD_RETRY_MS = 1_000;
const LOCK_RETRY_MS = 2_000;

export class RestoreEffects {
  private readonly now: () => number;

  constructor(private readonly o: RestoreEffectsOptions) {
    this.now = o.now ?? monotonicNow;
  }

  async run(restore: VMRestore, state: RestoreState): Promise<RestoreOutcome> {
    const effect = EFFECTS[state.step];
    if (!effect) throw new Error(`no restore effect for step ${state.step}`);
    const c = state.context;
    if (c.targetDomain !== undefined && !this.claim(restore, c.targetDomain)) {
      return wait(
        { reason: "WaitingForDomainLock", message: `domain ${c.targetDomain} is busy` },
        LOCK_RETRY_MS,
      );
    }
    try {
      return await effect(this, restore, c);
    } catch (err) {
      return this.failed(restoreFailureFrom(err, `${state.step} of ${c.targetDomain ?? "?"}`));
    }
  }

  /**
   * Whether this host's agent performs `restore`: the one of the snapshot's node (or of the new
   * domain's node when the restore names one). A restore whose snapshot is not found is every
   * agent's to fail, with the same status.
   */
  async handles(restore: VMRestore): Promise<boolean> {
    if (restore.status?.node !== undefined) return restore.status.node === this.o.node;
    const wanted = restore.spec.target.newDomain?.node;
    if (wanted !== undefined) return wanted === this.o.node;
    const namespace = restore.metadata.namespace!;
    if (this.o.snapshots.cached(namespace, restore.spec.snapshotName)) return true;
    const snapshot = await this.o.snapshots.client.get(namespace, restore.spec.snapshotName);
    return snapshot === undefined || snapshot.spec.source.node === this.o.node;
  }

  // ---- steps ---------------------------------------------------------------------------------

  async validate(restore: VMRestore, c: RestoreContext): Promise<RestoreOutcome> {
    const namespace = restore.metadata.namespace!;
    const snapshot = await this.snapshotOf(restore);
    if (!snapshot) {
      return this.fail(
        "SnapshotNotFound",
        `VMSnapshot ${c.snapshotName} does not exist in namespace ${namespace}`,
      );
    }
    const pinned = (snapshot.metadata.finalizers ?? []).includes(inUseFinalizer(restore));
    if (snapshot.metadata.deletionTimestamp && !pinned) {
      return this.fail("SnapshotDeleted", `VMSnapshot ${c.snapshotName} is being deleted`);
    }
    if (snapshot.status?.phase !== "Succeeded") {
      return this.fail(
        "SnapshotNotReady",
        `VMSnapshot ${c.snapshotName} is ${snapshot.status?.phase ?? "not started"}, not Succeeded: only a finished snapshot can be restored`,
      );
    }
    const source = snapshot.spec.source.domain;
    const target = c.newDomain ?? source;
    if (c.newDomain === undefined && this.o.tenancy) {
      // In place: the namespace must own the domain now (it may have changed hands since the
      // snapshot). A new domain needs no look: the snapshot in this namespace was taken under
      // the ownership check, and the copy carries the snapshot's owner element.
      const decision = await checkOwnership(
        this.o.hypervisor,
        { namespace, domain: source, node: this.o.node },
        this.o.tenancy.unownedDomains,
        { timeoutMs: this.o.callTimeoutMs },
      );
      if (!decision.allowed) return this.fail("Forbidden", decision.message);
    }
    if (!this.claim(restore, target)) {
      return this.fail(
        "TargetBusy",
        `domain ${target} is being snapshotted or restored (${this.o.admission.domainHolder(target)}); try again when that has finished`,
      );
    }
    const found = await this.lookUp(target);
    let stopFirst = false;
    let uuid: string;
    if (c.newDomain !== undefined) {
      // A domain of that name that is not this restore's own (a retry finds its own UUID).
      if (found && found.uuid !== restore.metadata.uid) {
        return this.fail("TargetExists", `a domain named ${target} exists already on this host`);
      }
      if (
        restore.spec.target.newDomain?.node &&
        snapshot.status.disks?.some((d) => d.backend !== "rbd")
      ) {
        return this.fail(
          "UnsupportedDisk",
          `only RBD disks can be restored on another node; VMSnapshot ${c.snapshotName} has file disks`,
        );
      }
      uuid = restore.metadata.uid!;
    } else {
      if (!found) return this.fail("Forbidden", `domain ${target} does not exist on this host`);
      if (!found.persistent) {
        // A transient domain vanishes when stopped, and its definition with it.
        return this.fail(
          "TargetTransient",
          `domain ${target} is transient (no persistent definition): vmsnap restores persistent domains in place; restore it as a new domain instead`,
        );
      }
      if (found.active) {
        if (!c.stopRunningTarget) {
          return this.fail(
            "TargetRunning",
            `domain ${target} is ${found.state}; set spec.stopRunningTarget: true to let vmsnap stop it, or stop it first`,
          );
        }
        stopFirst = true;
      }
      uuid = found.uuid;
    }
    await this.pin(restore, snapshot);
    return event({
      type: "VALIDATED",
      at: this.now(),
      targetDomain: target,
      targetUUID: uuid,
      node: this.o.node,
      consistency: consistencyOf(snapshot.status.conditions),
      restoresMemory: c.memoryWanted && c.newDomain === undefined && !!snapshot.status.memory,
      stopFirst,
    });
  }

  async stopTarget(_restore: VMRestore, c: RestoreContext): Promise<RestoreOutcome> {
    try {
      await this.o.hypervisor.destroy(c.targetDomain!, { timeoutMs: this.o.callTimeoutMs });
    } catch (err) {
      // Stopped already (by a previous attempt, or its owner): what this step wanted.
      if (!isReason(err, "DomainNotRunning")) throw err;
    }
    return event({ type: "TARGET_STOPPED", at: this.now() });
  }

  async restoreDisks(restore: VMRestore, c: RestoreContext): Promise<RestoreOutcome> {
    const snapshot = await this.pinnedSnapshot(restore);
    const handles = snapshot.status?.disks ?? [];
    const name = restoreNameOf(restore);
    const restored =
      c.newDomain === undefined
        ? await this.o.storage.revert(name, handles)
        : await this.o.storage.copy(name, handles, c.newDomain);
    return event({ type: "DISKS_RESTORED", at: this.now(), disks: restored.map(toStatusDisk) });
  }

  async restoreMemory(restore: VMRestore, c: RestoreContext): Promise<RestoreOutcome> {
    const domain = c.targetDomain!;
    const info = await this.lookUp(domain);
    // Active already: a previous attempt restored it (paused) and then stopped before recording.
    if (!info?.active) {
      const snapshot = await this.pinnedSnapshot(restore);
      const file = snapshot.status?.memory?.file;
      if (!file)
        return this.fail("NoMemoryImage", `VMSnapshot ${c.snapshotName} has no memory image`);
      const imageXml = await this.o.hypervisor.saveImageXml(file, {
        flags: DomainXmlFlags.Secure,
        timeoutMs: this.o.callTimeoutMs,
      });
      await this.o.hypervisor.restore(file, {
        xml: restoreDomainXml(imageXml, { disks: xmlDisks(c) }),
        flags: SaveRestoreFlags.Paused,
        timeoutMs: Math.max(1, c.startedAt + c.failureDeadlineMs - this.now()),
      });
    }
    const at = this.now();
    return event({ type: "MEMORY_RESTORED", at, thawDeadline: at + c.thawTimeoutMs });
  }

  async resume(restore: VMRestore, c: RestoreContext): Promise<RestoreOutcome> {
    const domain = c.targetDomain!;
    try {
      // Before the vCPUs run: if this agent dies now, the guard thaws the guest by the deadline.
      await this.o.guard.arm({
        id: restore.metadata.uid!,
        domain,
        deadline: c.thawDeadline!,
        resumeIfPaused: true,
        ...(c.targetUUID === undefined ? {} : { uuid: c.targetUUID }),
      });
    } catch (err) {
      return wait(
        {
          reason: "WaitingForThawGuard",
          message: `the thaw guard is unavailable (${String(err)}); not resuming a guest that wakes up frozen`,
        },
        GUARD_RETRY_MS,
      );
    }
    const info = await this.o.hypervisor.domainInfo(domain, { timeoutMs: this.o.callTimeoutMs });
    if (info.state === "paused") {
      await this.o.hypervisor.resume(domain, { timeoutMs: this.o.callTimeoutMs });
    }
    return event({ type: "RESUMED", at: this.now() });
  }

  async thaw(restore: VMRestore, c: RestoreContext): Promise<RestoreOutcome> {
    try {
      const thawed = await thawAndConfirm(this.o.hypervisor, c.targetDomain!, c.thawDeadline!, {
        now: this.now,
      });
      if (thawed.filesystems > 0) {
        await this.recordThaw(restore, c, thawed.at, thawed.filesystems);
        return event({
          type: "THAWED",
          at: thawed.at,
          filesystems: thawed.filesystems,
          by: "Agent",
        });
      }
      const earlier = await this.recordedThaw(restore, c);
      return event(
        earlier === undefined
          ? { type: "THAWED", at: thawed.at, filesystems: 0, by: "Agent" }
          : {
              type: "THAWED",
              at: earlier.at,
              filesystems: earlier.filesystems,
              by: earlier.by === "guard" ? "Guard" : "Agent",
            },
      );
    } catch (err) {
      return this.fail(
        "ThawFailed",
        `the restored guest could not be confirmed thawed: ${String(err)}; the thaw guard keeps trying until ${new Date(c.thawDeadline!).toISOString()}`,
      );
    }
  }

  /**
   * This agent's thaw, noted on the domain before status says it: should the agent die in
   * between, the next one reads when the guest was really thawed (recordedThaw). Best effort.
   */
  private async recordThaw(
    restore: VMRestore,
    c: RestoreContext,
    at: number,
    filesystems: number,
  ): Promise<void> {
    if (c.targetUUID === undefined) return;
    const record = { id: restore.metadata.uid!, at, filesystems, by: "agent" as const };
    await writeThawRecord(this.o.hypervisor, c.targetUUID, record, this.o.callTimeoutMs).catch(
      (err: unknown) =>
        this.o.log?.("could not record the thaw on the domain", {
          key: objectKey(restore),
          error: String(err),
        }),
    );
  }

  /**
   * Nothing was frozen when this agent thawed: if this restore's guest was thawed after the
   * resume by the guard (its agent had died) or by an agent killed before it wrote status, the
   * record on the domain says when — the end of the frozen time status must report. A guard's
   * record of 0 filesystems is when it found the guest thawed already (the dead agent's thaw
   * call had landed): the latest the thaw can have been. Without a record, this agent's own
   * time stands.
   */
  private async recordedThaw(
    restore: VMRestore,
    c: RestoreContext,
  ): Promise<ThawRecord | undefined> {
    if (c.targetUUID === undefined || c.resumedAt === undefined) return undefined;
    const record = await readThawRecord(
      this.o.hypervisor,
      c.targetUUID,
      restore.metadata.uid!,
      this.o.callTimeoutMs,
    ).catch(() => undefined);
    if (record === undefined) return undefined;
    // Two clocks (the guard's wall clock, ours): never before the resume nor after now.
    return { ...record, at: Math.min(Math.max(record.at, c.resumedAt), this.now()) };
  }

  /** After the thaw: the persistent definition follows the restored disks; the guard disarmed. */
  async settleDefinition(restore: VMRestore, c: RestoreContext): Promise<RestoreOutcome> {
    const domain = c.targetDomain!;
    const inactive = await this.o.hypervisor.domainXml(domain, {
      flags: DomainXmlFlags.Inactive | DomainXmlFlags.Secure,
      timeoutMs: this.o.callTimeoutMs,
    });
    await this.o.hypervisor.defineXml(restoreDomainXml(inactive, { disks: xmlDisks(c) }), {
      timeoutMs: this.o.callTimeoutMs,
    });
    await this.o.guard.disarm(restore.metadata.uid!);
    if (c.powerState === "Paused") {
      await this.o.hypervisor.suspend(domain, { timeoutMs: this.o.callTimeoutMs });
    }
    return event({ type: "COMPLETED", at: this.now() });
  }

  /** Disks only: the definition points at the restored disks, then the power state asked for. */
  async defineAndStart(restore: VMRestore, c: RestoreContext): Promise<RestoreOutcome> {
    const domain = c.targetDomain!;
    const existing = await this.lookUp(domain);
    if (!existing?.active) {
      const xml = await this.definitionXml(restore, c);
      await this.o.hypervisor.defineXml(xml, { timeoutMs: this.o.callTimeoutMs });
      if (c.powerState !== "Stopped") {
        await this.o.hypervisor.start(domain, {
          flags: c.powerState === "Paused" ? StartFlags.Paused : 0,
          timeoutMs: this.o.callTimeoutMs,
        });
      }
    }
    return event({ type: "COMPLETED", at: this.now() });
  }

  // ---- what the loop asks besides steps ------------------------------------------------------

  /** A failure after the RAM came back: resume and thaw now; the armed guard stays as backup. */
  async compensate(
    restore: VMRestore,
    _state: RestoreState,
    next: RestoreState,
    actions: readonly RestoreCompensation[],
  ): Promise<RestoreState> {
    if (!actions.includes("settleGuest") || next.context.targetDomain === undefined) return next;
    const result = await thawGuest(
      this.o.hypervisor,
      next.context.targetDomain,
      true,
      DEFAULT_THAW_POLICY,
      next.context.targetUUID === undefined ? {} : { uuid: next.context.targetUUID },
    ).catch((err: unknown) => ({ outcome: "failed" as const, lastError: err }));
    this.o.log?.("settled a restored guest after a failure", {
      key: objectKey(restore),
      outcome: result.outcome,
    });
    return next;
  }

  /** Deletion: an unfinished restore leaves no guest frozen; the snapshot is let go. */
  async finalize(restore: VMRestore, state: RestoreState): Promise<void> {
    if (!isFinalRestore(state.phase) && awaitingThaw(state.context)) {
      await this.compensate(restore, state, state, ["settleGuest"]);
    }
    await this.unpin(restore);
  }

  /** At the end: the domain is free again and the snapshot may be deleted. */
  async finish(restore: VMRestore): Promise<void> {
    this.release(restore);
    await this.unpin(restore);
  }

  forget(key: string): void {
    this.o.admission.releaseKey(lockKey(key));
  }

  // ---- helpers -------------------------------------------------------------------------------

  private claim(restore: VMRestore, domain: string): boolean {
    return this.o.admission.claimDomain(domain, lockKey(objectKey(restore)));
  }

  private release(restore: VMRestore): void {
    this.o.admission.releaseKey(lockKey(objectKey(restore)));
  }

  /** The snapshot, from this host's cache when it is there and finished, else from the API. */
  private async snapshotOf(restore: VMRestore): Promise<VMSnapshot | undefined> {
    const namespace = restore.metadata.namespace!;
    const cached = this.o.snapshots.cached(namespace, restore.spec.snapshotName);
    if (cached?.status?.phase === "Succeeded") return cached;
    return this.o.snapshots.client.get(namespace, restore.spec.snapshotName);
  }

  private async pinnedSnapshot(restore: VMRestore): Promise<VMSnapshot> {
    const snapshot = await this.snapshotOf(restore);
    if (!snapshot) throw new Error(`VMSnapshot ${restore.spec.snapshotName} vanished while pinned`);
    return snapshot;
  }

  /** Holds the snapshot: its deletion waits until this restore has finished with it. */
  private async pin(restore: VMRestore, snapshot: VMSnapshot): Promise<void> {
    const finalizers = snapshot.metadata.finalizers ?? [];
    const mine = inUseFinalizer(restore);
    if (finalizers.includes(mine)) return;
    await this.o.snapshots.client.setFinalizers(snapshot, [...finalizers, mine]);
  }

  private async unpin(restore: VMRestore): Promise<void> {
    const mine = inUseFinalizer(restore);
    const cached = this.o.snapshots.cached(restore.metadata.namespace!, restore.spec.snapshotName);
    if (cached && !(cached.metadata.finalizers ?? []).includes(mine)) return;
    for (let attempt = 0; attempt < 3; attempt++) {
      const snapshot = await this.o.snapshots.client.get(
        restore.metadata.namespace!,
        restore.spec.snapshotName,
      );
      const finalizers = snapshot?.metadata.finalizers ?? [];
      if (!snapshot || !finalizers.includes(mine)) return;
      try {
        await this.o.snapshots.client.setFinalizers(
          snapshot,
          finalizers.filter((f) => f !== mine),
        );
        return;
      } catch (err) {
        // A conflict (the snapshot changed since read): read it again and retry.
        if (!(err instanceof ConflictError) || attempt === 2) throw err;
      }
    }
  }

  private async lookUp(domain: string) {
    try {
      return await this.o.hypervisor.domainInfo(domain, { timeoutMs: this.o.callTimeoutMs });
    } catch (err) {
      if (isReason(err, "DomainNotFound")) return undefined;
      throw err;
    }
  }

  /**
   * The definition a disks-only restore defines: the one the snapshot kept with its disks (the
   * domain as it was then, readable from every node that reads the disks); for a snapshot made
   * before vmsnap kept one, the memory image's XML, else the source domain's current one.
   */
  private async definitionXml(restore: VMRestore, c: RestoreContext): Promise<string> {
    const snapshot = await this.pinnedSnapshot(restore);
    const base = await this.snapshotDefinition(snapshot);
    return restoreDomainXml(base, {
      disks: xmlDisks(c),
      ...(c.newDomain !== undefined
        ? // New MACs too: the copy may run beside its source on the same network.
          { identity: { name: c.newDomain, uuid: c.targetUUID!, macSeed: c.targetUUID! } }
        : {}),
    });
  }

  private async snapshotDefinition(snapshot: VMSnapshot): Promise<string> {
    const status = snapshot.status!;
    if (status.definition) {
      const kept = await this.o.storage.readDefinition(status.snapshotName!, status.disks ?? []);
      if (kept === undefined) {
        throw new DefinitionMissing(
          `VMSnapshot ${snapshot.metadata.name} keeps its domain definition at ${status.definition.location} (${status.definition.backend}), and it is not there`,
        );
      }
      return kept;
    }
    const file = status.memory?.file;
    return file
      ? await this.o.hypervisor.saveImageXml(file, {
          flags: DomainXmlFlags.Secure,
          timeoutMs: this.o.callTimeoutMs,
        })
      : await this.o.hypervisor.domainXml(snapshot.spec.source.domain, {
          flags: DomainXmlFlags.Inactive | DomainXmlFlags.Secure,
          timeoutMs: this.o.callTimeoutMs,
        });
  }

  private fail(reason: RestoreFailureReason, message: string): RestoreOutcome {
    return this.failed({ reason, message });
  }

  private failed(f: { reason: RestoreFailureReason; message: string }): RestoreOutcome {
    return event({ type: "FAILED", at: this.now(), reason: f.reason, message: f.message });
  }
}

/** The restore's own name for what it makes (overlays): from its UID, unique and stable. */
export function restoreNameOf(restore: VMRestore): string {
  return `vmrestore-${restore.metadata.uid}`;
}

/** Restores and snapshots share the domain locks; the prefix keeps their keys apart. */
function lockKey(key: string): string {
  return `restore:${key}`;
}

function toStatusDisk(d: RestoredDiskHandle) {
  return { ...d, backend: d.backend as "rbd" | "libvirt-file" };
}

/** Where each restored disk lives, as the domain XML rewrite wants it. */
function xmlDisks(c: RestoreContext): RestoredDisk[] {
  return c.restoredDisks.map((d) => {
    if (d.backend === "libvirt-file")
      return { target: d.target, source: { kind: "file", path: d.source } };
    const parts = d.source.split("/");
    const [pool, namespace, image] = parts.length === 3 ? parts : [parts[0], undefined, parts[1]];
    return {
      target: d.target,
      source: { kind: "rbd", pool: pool!, ...(namespace ? { namespace } : {}), image: image! },
    };
  });
}

function isReason(err: unknown, reason: string): boolean {
  return err instanceof HypervisorError && err.reason === reason;
}

function event(e: RestoreEvent): RestoreOutcome {
  return { event: e };
}

function wait(waiting: Waiting, retryAfterMs: number): RestoreOutcome {
  return { wait: waiting, retryAfterMs };
}
