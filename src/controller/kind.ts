// What a resource kind supplies to the one reconcile loop (reconciler.ts): its pure machine, the
// effects that act on the world, its status codec and its Event wording. VMSnapshot is the first
// kind (src/snapshot/kind.ts); a new kind is new files implementing this, never a copy of the loop.
import type { KubeObject as PlainObject, StatusOf } from "../kube/resource.ts";

/** Any namespaced custom object with a status, which the loop can drive. */
export interface KubeObject extends PlainObject {
  status?: object;
}

/** A state of the kind's machine: the phase users see and whatever the machine needs. */
export interface KindState {
  readonly phase: string;
}

/** The machine's answer to one event. */
export type KindStep<S, C> = S & {
  /** What must be undone before the new state is recorded, in order. */
  readonly compensations: readonly C[];
  /** False when the machine ignored the event (it does not apply in this state). */
  readonly accepted: boolean;
};

/** A state that cannot make progress yet, and why (shown in the Reconciling condition). */
export interface Waiting {
  readonly reason: string;
  readonly message: string;
}

/** What an effect reports: one event for the machine, or a wait (nothing happened). */
export type Outcome<E> =
  { readonly event: E } | { readonly wait: Waiting; readonly retryAfterMs: number };

/** One Kubernetes Event for a transition. */
export interface Announcement {
  readonly type: "Normal" | "Warning";
  readonly reason: string;
  readonly note: string;
}

export interface Revisit<S> {
  readonly state?: S;
  readonly retryAfterMs?: number;
}

export interface Kind<T extends KubeObject, S extends KindState, E, C> {
  /** The controller's name in metrics and logs (controller-runtime's `controller` label). */
  readonly name: string;
  /** Held while backend artefacts may exist, so none outlives a deleted resource. */
  readonly finalizer: string;

  /**
   * Whether this agent works on the object at all (several agents watch a kind that is not
   * sharded by node). Absent: every object the informer delivers is this agent's.
   */
  handles?(object: T): Promise<boolean>;

  // ---- the machine (pure) ----
  /** The state recorded in the object's status, or a fresh one starting now. */
  stateOf(object: T, now: number): S;
  step(state: S, event: E): KindStep<S, C>;
  isFinal(state: S): boolean;
  /** An event that lets the machine judge its deadlines when an effect must not start. */
  overdue(state: S, now: number): E | undefined;

  // ---- the status codec (pure) ----
  statusOf(object: T, state: S, now: number, waiting?: Waiting): StatusOf<T>;

  // ---- the effects (I/O) ----
  /** Runs the idempotent effect of the state's step and reports its outcome. */
  run(object: T, state: S): Promise<Outcome<E>>;
  /** Runs the compensations a failure asked for; returns `next` with what they did recorded. */
  compensate(object: T, state: S, next: S, actions: readonly C[]): Promise<S>;
  /**
   * Deletion: undo what an unfinished attempt did, or remove a finished one's artefacts. A
   * `retryAfterMs` answer holds the deletion (something still uses the object): come back then.
   */
  finalize(object: T, state: S): Promise<void | { readonly retryAfterMs: number }>;
  /** Forgets everything this process holds for the object (locks, slots, sessions). */
  finish(object: T): void | Promise<void>;
  /**
   * The object left the cache without being finalized (its finalizer was force-removed, etcd
   * was restored): let go of whatever this process held for its key.
   */
  forget(key: string): void;
  /**
   * At start-up, before any worker runs: undo what a previous process left in the world (a
   * guest it left frozen or paused), from the objects' recorded states.
   */
  recover?(objects: readonly T[]): Promise<void>;
  /**
   * A final object that still owes the world a check (a failure whose thaw was never
   * confirmed): look again. `state` replaces the recorded one (status follows); `retryAfterMs`
   * asks to look again then. Undefined: nothing left to check.
   */
  revisit?(object: T, state: S): Promise<Revisit<S> | undefined>;

  // ---- how urgently status must follow ----
  /**
   * Inside a window where every moment counts (a frozen guest): status writes overlap the next
   * effect instead of delaying it; a failed write does not stop the effects.
   */
  urgent(state: S): boolean;
  /** A transition that must reach status before anything else happens (the write-ahead). */
  writeAhead(from: S, to: S): boolean;

  /** The Event a transition deserves. */
  announce(from: S, to: S): Announcement;
}
