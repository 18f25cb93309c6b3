// The informer's cache: the newest VMSnapshot seen for each `namespace/name`, and what changed
// when an event or a fresh list arrives. Objects are stored frozen (deeply): they are shared with
// every reader, and one reconciler mutating its "copy" would silently change what all others
// see. Only what the agent needs is kept: `metadata.managedFields` (often the largest part of a
// small object) is dropped on the way in, so 10,000 snapshots fit comfortably in the agent.
import type { VMSnapshot } from "../api/types.ts";

export type ChangeKind = "added" | "modified" | "deleted" | "resync";

/** `namespace/name`, the key the work queue carries. */
export function keyOf(obj: { metadata?: { namespace?: string; name?: string } }): string {
  const namespace = obj.metadata?.namespace;
  const name = obj.metadata?.name ?? "";
  return namespace ? `${namespace}/${name}` : name;
}

/** The object as the cache holds it: without managed fields, frozen all the way down. */
export function forCache(raw: unknown): VMSnapshot {
  const obj = raw as VMSnapshot;
  if (obj.metadata?.managedFields !== undefined) delete obj.metadata.managedFields;
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

export class SnapshotStore {
  private readonly items = new Map<string, VMSnapshot>();

  get size(): number {
    return this.items.size;
  }

  get(key: string): VMSnapshot | undefined {
    return this.items.get(key);
  }

  keys(): IterableIterator<string> {
    return this.items.keys();
  }

  values(): IterableIterator<VMSnapshot> {
    return this.items.values();
  }

  /** Stores `obj` (already `forCache`d); undefined when the cache already had this version. */
  upsert(obj: VMSnapshot): Change | undefined {
    const key = keyOf(obj);
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
   * Makes the cache equal to a complete list, returning what changed: objects missing from the
   * list were deleted while we were not watching; an unchanged version keeps the cached object.
   */
  replace(objects: readonly VMSnapshot[]): Change[] {
    const changes: Change[] = [];
    const listed = new Set<string>();
    for (const obj of objects) {
      listed.add(keyOf(obj));
      const change = this.upsert(obj);
      if (change) changes.push(change);
    }
    for (const key of this.items.keys()) {
      if (!listed.has(key)) {
        this.items.delete(key);
        changes.push({ key, kind: "deleted" });
      }
    }
    return changes;
  }
}

function sameVersion(a: VMSnapshot, b: VMSnapshot): boolean {
  const rv = a.metadata.resourceVersion;
  return rv !== undefined && rv === b.metadata.resourceVersion;
}
