// The informer's cache: the newest object seen for each `namespace/name`, and what changed
// when an event or a fresh list arrives. Objects are stored frozen (deeply): they are shared with
// every reader, and one reconciler mutating its "copy" would silently change what all others
// see. Only what the agent needs is kept: `metadata.managedFields` (often the largest part of a
// small object) and kubectl's last-applied annotation are dropped on the way in, so 10,000
// snapshots fit in the agent.
import { objectKey, type KubeObject } from "./resource.ts";

export type ChangeKind = "added" | "modified" | "deleted" | "resync";

/** Written by `kubectl apply`: a second copy of the spec, which the agent never reads. */
const LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration";

/**
 * The object as the cache holds it: without managed fields and kubectl's last-applied copy,
 * frozen all the way down.
 */
export function forCache<T extends KubeObject>(raw: unknown): T {
  const obj = raw as T;
  const metadata = obj.metadata;
  if (metadata?.managedFields !== undefined) delete metadata.managedFields;
  if (metadata?.annotations?.[LAST_APPLIED] !== undefined) {
    delete metadata.annotations[LAST_APPLIED];
    if (Object.keys(metadata.annotations).length === 0) delete metadata.annotations;
  }
  return deepFreeze(obj);
}

function deepFreeze<T>(value: T): T {
  if (value === null || typeof value !== "object" || Object.isFrozen(value)) return value;
  for (const child of Object.values(value)) deepFreeze(child);
  return Object.freeze(value);
}

export interface Change {
  readonly key: string;
  readonly kind: Exclude<ChangeKind, "resync">;
}

export class ObjectStore<T extends KubeObject> {
  private readonly items = new Map<string, T>();

  get size(): number {
    return this.items.size;
  }

  get(key: string): T | undefined {
    return this.items.get(key);
  }

  keys(): IterableIterator<string> {
    return this.items.keys();
  }

  values(): IterableIterator<T> {
    return this.items.values();
  }

  /** Stores `obj` (already `forCache`d); undefined when the cache already had this version. */
  upsert(obj: T): Change | undefined {
    const key = objectKey(obj);
    const current = this.items.get(key);
    if (current && sameVersion(current, obj)) return undefined;
    this.items.set(key, obj);
    return { key, kind: current ? "modified" : "added" };
  }

  /** Removes `key`; undefined when it was not cached. */
  remove(key: string): Change | undefined {
    return this.items.delete(key) ? { key, kind: "deleted" } : undefined;
  }

  /**
   * Removes every key not in `keep`, returning the deletions: after a complete list, what the
   * list did not contain was deleted while we were not watching.
   */
  retainOnly(keep: ReadonlySet<string>): Change[] {
    const changes: Change[] = [];
    for (const key of this.items.keys()) {
      if (!keep.has(key)) {
        this.items.delete(key);
        changes.push({ key, kind: "deleted" });
      }
    }
    return changes;
  }
}

function sameVersion(a: KubeObject, b: KubeObject): boolean {
  const rv = a.metadata.resourceVersion;
  return rv !== undefined && rv === b.metadata.resourceVersion;
}
