// The one sync function, for every kind, in the style of controller-runtime:
//   read the object → run the idempotent effect of its state → turn the outcome into an event
//   → transition() → run the compensations it asks for → patch status (conditional on
//   resourceVersion) → one Event per transition → repeat until final, or return requeue-after.
//
// Invariants:
// - status is the durable cursor: nothing is done that status could not resume or undo; a
//   write-ahead transition (the freeze deadline) reaches status before the next effect runs;
// - inside an urgent window (a frozen guest) writes overlap the next effect and a failed write
//   never stops the effects: this process's state is authoritative until status catches up;
// - a deleted object's finalizer goes only after the kind's finalize worked;
// - never act on a stale cache: if our last write is newer than the cache, read the server;
// - an unchanged status is never re-sent (compared by value, not by key order).
import type { Kind, KindState, KubeObject, Waiting } from "./kind.ts";
import { ConflictError, type ReconcileClient } from "../kube/object-client.ts";
import type { EventSink } from "../kube/recorder.ts";
import { objectKey } from "../kube/resource.ts";
import { sameStatus } from "./status-equality.ts";
import { monotonicNow } from "../clock.ts";

export interface ReconcileResult {
  /** Come back after this long (a wait, or a deadline to judge); undefined when done. */
  readonly requeueAfterMs?: number;
}

/** Observes transitions, for metrics; never influences them. */
export interface TransitionObserver<T, S> {
  transition?(object: T, from: S, to: S): void;
}

export interface ReconcilerOptions<T extends KubeObject, S extends KindState, E, C> {
  readonly kind: Kind<T, S, E, C>;
  readonly read: (key: string) => T | undefined;
  readonly client: ReconcileClient<T>;
  readonly events: Pick<EventSink, "record">;
  readonly observer?: TransitionObserver<T, S>;
  readonly now?: () => number;
  readonly log?: (message: string, fields: Record<string, unknown>) => void;
}

/** How long to wait before looking again at an object whose effect reported an ignored event. */
const IGNORED_EVENT_RETRY_MS = 1_000;

export class Reconciler<T extends KubeObject, S extends KindState, E extends { type: string }, C> {
  /** The object each of our own writes returned, to detect a cache that lags behind them. */
  private readonly written = new Map<string, T>();
  /** The state of each object this process is working on, by UID: newer than status may be. */
  private readonly states = new Map<string, S>();
  /** The UID last seen under each key, to forget its state when the key disappears. */
  private readonly uids = new Map<string, string>();
  private readonly kind: Kind<T, S, E, C>;
  private readonly now: () => number;

  constructor(private readonly o: ReconcilerOptions<T, S, E, C>) {
    this.kind = o.kind;
    this.now = o.now ?? monotonicNow;
  }

  /** The state this process holds for an object, else the one its status records. */
  stateOf(object: T): S {
    return this.states.get(object.metadata.uid!) ?? this.kind.stateOf(object, this.now());
  }

  async reconcile(key: string): Promise<ReconcileResult> {
    let object = await this.read(key);
    if (!object) {
      // Gone without a finalize (finalizer force-removed, etcd restored): nothing may stay held.
      this.written.delete(key);
      const uid = this.uids.get(key);
      if (uid !== undefined) this.states.delete(uid);
      this.uids.delete(key);
      this.kind.forget(key);
      return {};
    }
    if (this.kind.handles && !(await this.kind.handles(object))) return {};
    this.uids.set(key, uidOf(object));
    if (object.metadata.deletionTimestamp) return this.finalize(object);
    const recorded = this.kind.stateOf(object, this.now());
    if (this.kind.isFinal(recorded) && !this.states.has(uidOf(object))) {
      await this.kind.finish(object);
      return this.revisit(object, recorded);
    }
    const finalizers = object.metadata.finalizers ?? [];
    if (!finalizers.includes(this.kind.finalizer)) {
      // Before any artefact exists, so none can outlive a deleted resource.
      object = this.remember(
        await this.o.client.setFinalizers(object, [...finalizers, this.kind.finalizer]),
      );
    }
    if (object.status === undefined) {
      // Picked up: say so (Reconciling=True) before the first effect, which may take long (a
      // slow Ceph), so that kstatus readers never take a new object for a finished one.
      object = await this.write(object, this.stateOf(object));
    }
    return this.drive(key, object);
  }

  private async drive(key: string, first: T): Promise<ReconcileResult> {
    let current = first;
    const uid = uidOf(current);
    // A status write still in flight: inside an urgent window writes overlap the next effect
    // instead of delaying it, and stay in order.
    let inFlight: Promise<T> | undefined;
    for (;;) {
      const state = this.stateOf(current);
      if (inFlight && !this.kind.urgent(state)) {
        current = await inFlight;
        inFlight = undefined;
      }
      if (this.kind.isFinal(state)) {
        // A final state can still be urgent (a failure whose thaw was not confirmed leaves the
        // guest possibly frozen): its write may be in flight, and writing again from the object
        // before it would conflict with it.
        if (inFlight) current = await inFlight;
        // Finished in this process, but status did not get it yet: only the write is left.
        current = await this.write(current, state);
        this.states.delete(uid);
        await this.kind.finish(current);
        return this.revisit(current, state);
      }
      const overdue = this.kind.overdue(state, this.now());
      const outcome = overdue ? { event: overdue } : await this.kind.run(current, state);
      if ("wait" in outcome) {
        await this.write(current, state, outcome.wait);
        return { requeueAfterMs: outcome.retryAfterMs };
      }
      const stepped = this.kind.step(state, outcome.event);
      if (!stepped.accepted) {
        // An effect reported something its state does not take: a bug, never a guess.
        this.o.log?.("event ignored by the phase machine", {
          key,
          phase: state.phase,
          event: outcome.event.type,
        });
        return { requeueAfterMs: IGNORED_EVENT_RETRY_MS };
      }
      const next =
        stepped.compensations.length > 0
          ? await this.kind.compensate(current, state, stepped, stepped.compensations)
          : stepped;
      // It happened, whether or not status records it at once: announce it now.
      if (next.phase !== state.phase) this.announce(current, state, next);
      const writeAhead = this.kind.writeAhead(state, next);
      const writing = (inFlight ?? Promise.resolve(current)).then((latest) =>
        this.advance(latest, next, writeAhead),
      );
      if (this.kind.urgent(next) && !writeAhead) {
        // advance() never throws inside an urgent window, so nothing here can be lost.
        this.states.set(uid, next);
        inFlight = writing;
        continue;
      }
      current = await writing;
      inFlight = undefined;
      if (this.kind.isFinal(next)) {
        this.states.delete(uid);
        await this.kind.finish(current);
        return {};
      }
    }
  }

  /** Deletion: the kind undoes or removes what it must; then the finalizer goes. */
  private async finalize(object: T): Promise<ReconcileResult> {
    const finalizers = object.metadata.finalizers ?? [];
    if (!finalizers.includes(this.kind.finalizer)) return {};
    const held = await this.kind.finalize(object, this.stateOf(object));
    if (held) return { requeueAfterMs: held.retryAfterMs };
    await this.kind.finish(object);
    this.states.delete(uidOf(object));
    await this.o.client.setFinalizers(
      object,
      finalizers.filter((f) => f !== this.kind.finalizer),
    );
    this.written.delete(objectKey(object));
    this.uids.delete(objectKey(object));
    return {};
  }

  private async read(key: string): Promise<T | undefined> {
    const cached = this.o.read(key);
    const mine = this.written.get(key);
    if (!cached || !mine || mine.metadata.uid !== cached.metadata.uid) return cached;
    if (mine.metadata.resourceVersion === cached.metadata.resourceVersion) return cached;
    // The cache has not caught up with our last write (or someone changed the object since):
    // ask the API server rather than redo an effect from a stale state.
    const [namespace, name] = key.split("/") as [string, string];
    return (await this.o.client.get(namespace, name)) ?? cached;
  }

  /**
   * Records `next`: in this process first, then in status. A write-ahead must reach status
   * before anything else happens. Inside an urgent window a failed write (an API server
   * restart, say) must not hold the guest: the state stays in this process, the effects go on,
   * and status catches up afterwards.
   */
  private async advance(object: T, next: S, writeAhead: boolean): Promise<T> {
    const uid = uidOf(object);
    try {
      const written = await this.write(object, next);
      this.states.set(uid, next);
      return written;
    } catch (err) {
      if (writeAhead) throw err;
      this.states.set(uid, next);
      if (!this.kind.urgent(next)) throw err;
      this.o.log?.("status write failed inside an urgent window; going on", {
        key: objectKey(object),
        phase: next.phase,
        error: String(err),
      });
      return object;
    }
  }

  /** Patches status when it changed; on a conflict, retries once if status is still ours. */
  /** A final object that still owes a check: look again, write what changed, come back later. */
  private async revisit(object: T, state: S): Promise<ReconcileResult> {
    const again = await this.kind.revisit?.(object, state);
    if (again?.state !== undefined) await this.write(object, again.state);
    return again?.retryAfterMs === undefined ? {} : { requeueAfterMs: again.retryAfterMs };
  }

  private async write(object: T, state: S, waiting?: Waiting): Promise<T> {
    const status = this.kind.statusOf(object, state, this.now(), waiting);
    if (sameStatus(object.status, status)) return object;
    try {
      return this.remember(await this.o.client.patchStatus(object, status));
    } catch (err) {
      if (!(err instanceof ConflictError)) throw err;
      // Usually metadata changed (a label, an annotation): status is still the one we based
      // this write on, so the write is still right.
      const fresh = await this.o.client.get(object.metadata.namespace!, object.metadata.name!);
      if (!fresh || uidOf(fresh) !== uidOf(object) || !sameStatus(fresh.status, object.status)) {
        throw err;
      }
      return this.remember(await this.o.client.patchStatus(fresh, status));
    }
  }

  private remember(object: T): T {
    this.written.set(objectKey(object), object);
    return object;
  }

  private announce(object: T, from: S, to: S): void {
    this.o.observer?.transition?.(object, from, to);
    const { type, reason, note } = this.kind.announce(from, to);
    this.o.events.record(object, type, reason, to.phase, note);
  }
}

function uidOf(object: KubeObject): string {
  return object.metadata.uid!;
}
