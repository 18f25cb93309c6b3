// The sync function for one VMSnapshot, in the style of controller-runtime:
//   read the object → run the idempotent effect of its phase → turn the outcome into an event
//   → transition() → run the compensations it asks for → patch status (conditional on
//   resourceVersion) → one Event per transition → repeat until final, or return requeue-after.
//
// Invariants:
// - status is the durable cursor: nothing is done that status could not resume or undo; the
//   freeze deadline is written before the guest is frozen;
// - one snapshot in flight per domain; at most N guests frozen per host (Admission);
// - a deleted snapshot's artefacts are removed under deletionPolicy Delete, kept under Retain,
//   and the finalizer goes only after that worked;
// - never act on a stale cache: if our last write is newer than the cache, read the server.
import { mayBeFrozen, type SnapshotContext } from "../machine/context.ts";
import { isFinal, step, type MachineState, type Step } from "../machine/step.ts";
import type { VMSnapshot } from "../api/types.ts";
import type { SnapshotEffects } from "./effects.ts";
import { keyOf, snapshotNameOf } from "./effects.ts";
import type { EventSink } from "../kube/recorder.ts";
import { ConflictError, type ReconcileClient } from "../kube/object-client.ts";
import {
  phaseOf,
  stateFromStatus,
  statusDiffers,
  statusFromState,
  type Waiting,
} from "./status.ts";

export const FINALIZER = "vmsnap.io/artefacts";

/** The compensation times the context does not have yet. */
function onlyNew(
  undone: { thawedAt?: number; resumedAt?: number },
  context: SnapshotContext,
): { thawedAt?: number; resumedAt?: number } {
  return {
    ...(undone.thawedAt !== undefined && context.thawedAt === undefined
      ? { thawedAt: undone.thawedAt }
      : {}),
    ...(undone.resumedAt !== undefined && context.resumedAt === undefined
      ? { resumedAt: undone.resumedAt }
      : {}),
  };
}

/** The guest is frozen or its vCPUs paused by this attempt: every moment counts. */
function inFrozenWindow(context: SnapshotContext): boolean {
  return (
    (context.frozenAt !== undefined && mayBeFrozen(context)) ||
    (context.pausedAt !== undefined && context.resumedAt === undefined)
  );
}

export interface ReconcileResult {
  /** Come back after this long (a wait, or a deadline to judge); undefined when done. */
  readonly requeueAfterMs?: number;
}

/** Observes what happened, for metrics; every hook is optional. */
export interface SnapshotObserver {
  transition?(snapshot: VMSnapshot, from: MachineState, to: MachineState): void;
}

export interface ReconcilerOptions {
  readonly read: (key: string) => VMSnapshot | undefined;
  readonly client: ReconcileClient<VMSnapshot>;
  readonly effects: SnapshotEffects;
  readonly events: EventSink;
  readonly observer?: SnapshotObserver;
  readonly now?: () => number;
  readonly log?: (message: string, fields: Record<string, unknown>) => void;
}

export class Reconciler {
  /** The object each of our own writes returned, to detect a cache that lags behind them. */
  private readonly written = new Map<string, VMSnapshot>();
  /** The machine state of each snapshot this process is working on, by UID. */
  private readonly states = new Map<string, MachineState>();
  private readonly now: () => number;

  constructor(private readonly o: ReconcilerOptions) {
    this.now = o.now ?? Date.now;
  }

  async reconcile(key: string): Promise<ReconcileResult> {
    let snapshot = await this.read(key);
    if (!snapshot) {
      this.written.delete(key);
      return {};
    }
    if (snapshot.metadata.deletionTimestamp) return this.finalize(snapshot);
    if (isFinal(phaseOf(snapshot))) {
      this.o.effects.finish(snapshot);
      return {};
    }
    const finalizers = snapshot.metadata.finalizers ?? [];
    if (!finalizers.includes(FINALIZER)) {
      // Before any artefact exists, so none can outlive a deleted resource.
      snapshot = this.remember(
        await this.o.client.setFinalizers(snapshot, [...finalizers, FINALIZER]),
      );
    }
    let current: VMSnapshot = snapshot;
    const uid = current.metadata.uid!;
    // A status write still in flight. Inside the frozen window, writes overlap the next effect
    // (the disk snapshot, the thaw) instead of delaying it: the write-ahead and the guard keep
    // the guest safe, this process's state is authoritative, and writes stay in order.
    let inFlight: Promise<VMSnapshot> | undefined;
    for (;;) {
      // This process's own record wins over status, which may lag behind it (see `advance`).
      const state = this.states.get(uid) ?? stateFromStatus(current, this.now());
      if (inFlight && !inFrozenWindow(state.context)) {
        current = await inFlight;
        inFlight = undefined;
      }
      if (isFinal(state.phase)) {
        // Finished in this process, but status did not get it yet: only the write is left.
        current = await this.write(current, state);
        this.states.delete(uid);
        this.o.effects.finish(current);
        return {};
      }
      const outcome = await this.o.effects.run(current, state);
      if ("wait" in outcome) {
        await this.write(current, state, outcome.wait);
        return { requeueAfterMs: outcome.retryAfterMs };
      }
      let next: Step = step(state, outcome.event);
      if (!next.accepted) {
        // An effect reported something its phase does not take: a bug, never a guess.
        this.o.log?.("event ignored by the phase machine", {
          key,
          phase: state.phase,
          event: outcome.event.type,
        });
        return { requeueAfterMs: 1_000 };
      }
      if (next.compensations.length > 0) {
        const undone = await this.o.effects.compensate(current, state, next.compensations);
        // Facts, not decisions: when the compensations thawed and resumed the guest, so status
        // says how long a failed attempt held it frozen or paused.
        next = { ...next, context: { ...next.context, ...onlyNew(undone, next.context) } };
      }
      // It happened, whether or not status records it at once: announce it now.
      if (next.phase !== state.phase) this.announce(current, state, next);
      const writeAhead =
        next.context.freezeDeadline !== undefined && state.context.freezeDeadline === undefined;
      const base = inFlight ?? Promise.resolve(current);
      const writing = base.then((latest) => this.advance(latest, state, next));
      if (inFrozenWindow(next.context) && !writeAhead) {
        // advance() never throws inside the frozen window, so nothing here can be lost.
        this.states.set(uid, next);
        inFlight = writing;
        continue;
      }
      current = await writing;
      inFlight = undefined;
      if (isFinal(next.phase)) {
        this.states.delete(uid);
        this.o.effects.finish(current);
        return {};
      }
    }
  }

  /** Deletion: undo an attempt in flight, or remove a finished one's artefacts under Delete. */
  private async finalize(snapshot: VMSnapshot): Promise<ReconcileResult> {
    const finalizers = snapshot.metadata.finalizers ?? [];
    if (!finalizers.includes(FINALIZER)) return {};
    const state = stateFromStatus(snapshot, this.now());
    if (!isFinal(state.phase)) {
      await this.o.effects.compensate(snapshot, state, ["resumeVcpus", "thaw", "removeArtefacts"]);
    } else if ((snapshot.spec.deletionPolicy ?? "Delete") === "Delete") {
      // A failed attempt removed its artefacts when it failed, unless storage was down then:
      // removal is idempotent, so it runs again here.
      await this.o.effects.removeArtefacts(snapshot, state.context);
    }
    this.o.effects.finish(snapshot);
    this.states.delete(snapshot.metadata.uid!);
    await this.o.client.setFinalizers(
      snapshot,
      finalizers.filter((f) => f !== FINALIZER),
    );
    this.written.delete(keyOf(snapshot));
    return {};
  }

  private async read(key: string): Promise<VMSnapshot | undefined> {
    const cached = this.o.read(key);
    const mine = this.written.get(key);
    if (!cached || !mine || mine.metadata.uid !== cached.metadata.uid) return cached;
    if (mine.metadata.resourceVersion === cached.metadata.resourceVersion) return cached;
    // The cache has not caught up with our last write (or someone changed the object since):
    // ask the API server rather than redo an effect from a stale phase.
    const [namespace, name] = key.split("/") as [string, string];
    return (await this.o.client.get(namespace, name)) ?? cached;
  }

  /**
   * Records `next`: in this process first, then in status. The write-ahead (the transition that
   * sets the freeze deadline) must reach status before anything else happens. After it, a
   * failed write (an API server restart, say) must not keep a guest frozen: the state stays in
   * this process, the frozen window goes on to its thaw, and status catches up afterwards.
   */
  private async advance(
    snapshot: VMSnapshot,
    state: MachineState,
    next: MachineState,
  ): Promise<VMSnapshot> {
    const uid = snapshot.metadata.uid!;
    const writeAhead =
      next.context.freezeDeadline !== undefined && state.context.freezeDeadline === undefined;
    try {
      const written = await this.write(snapshot, next);
      this.states.set(uid, next);
      return written;
    } catch (err) {
      if (writeAhead) throw err;
      this.states.set(uid, next);
      if (!inFrozenWindow(next.context)) throw err;
      this.o.log?.("status write failed inside the frozen window; going on to the thaw", {
        key: keyOf(snapshot),
        phase: next.phase,
        error: String(err),
      });
      return snapshot;
    }
  }

  /** Patches status when it changed; on a conflict, retries once if status is still ours. */
  private async write(
    snapshot: VMSnapshot,
    state: MachineState,
    waiting?: Waiting,
  ): Promise<VMSnapshot> {
    const status = statusFromState(snapshot, state, this.now(), {
      snapshotName: snapshotNameOf(snapshot),
      ...(snapshot.spec.disks?.exclude ? { excludedDisks: snapshot.spec.disks.exclude } : {}),
      ...(waiting ? { waiting } : {}),
    });
    if (!statusDiffers(snapshot.status, status)) return snapshot;
    try {
      return this.remember(await this.o.client.patchStatus(snapshot, status));
    } catch (err) {
      if (!(err instanceof ConflictError)) throw err;
      // Usually metadata changed (a label, an annotation): status is still the one we based
      // this write on, so the write is still right.
      const fresh = await this.o.client.get(snapshot.metadata.namespace!, snapshot.metadata.name!);
      if (
        !fresh ||
        fresh.metadata.uid !== snapshot.metadata.uid ||
        statusDiffers(fresh.status, snapshot.status ?? {})
      ) {
        throw err;
      }
      return this.remember(await this.o.client.patchStatus(fresh, status));
    }
  }

  private remember(snapshot: VMSnapshot): VMSnapshot {
    this.written.set(keyOf(snapshot), snapshot);
    return snapshot;
  }

  private announce(snapshot: VMSnapshot, from: MachineState, to: MachineState): void {
    this.o.observer?.transition?.(snapshot, from, to);
    const c = to.context;
    if (to.phase === "Failed") {
      this.o.events.record(snapshot, "Warning", c.error!.reason, to.phase, c.error!.message);
      return;
    }
    const note =
      to.phase === "Frozen"
        ? `froze the guest's filesystems (thawed by ${new Date(c.freezeDeadline!).toISOString()} at the latest)`
        : to.phase === "DisksSnapshotted"
          ? `snapshotted ${c.disks.length} disk(s): ${c.disks.map((d) => d.snapshot).join(", ")}`
          : to.phase === "MemorySaved"
            ? `saved ${c.memoryImage!.bytes} bytes of memory to ${c.memoryImage!.file}`
            : to.phase === "Thawed"
              ? `thawed the guest after ${c.thawedAt! - c.frozenAt!} ms frozen`
              : `snapshot ready${c.quiesced ? "" : ` (not quiesced: ${c.unquiesced?.reason})`}`;
    this.o.events.record(snapshot, "Normal", to.phase, to.phase, note);
  }
}
