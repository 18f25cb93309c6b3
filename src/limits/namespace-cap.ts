// A per-namespace cap on snapshots in flight on this node: one tenant creating a burst of
// VMSnapshots gets at most N worked on at once here, and the others wait (they do not fail), so
// it cannot take every worker and freeze slot of a host it shares. Pure bookkeeping, like
// controller/admission.ts; who holds what is keyed by the snapshot (namespace/name).

export class NamespaceCap {
  private readonly holders = new Map<string, Set<string>>();
  private readonly namespaceOf = new Map<string, string>();

  /** `max` snapshots of one namespace in flight at once on this node. */
  constructor(private readonly max: number) {
    if (!Number.isInteger(max) || max < 1)
      throw new Error(`the cap must be a whole number ≥ 1, not ${max}`);
  }

  /** Takes (or re-takes) a place for `key` in `namespace`; false when the namespace is at its cap. */
  claim(namespace: string, key: string): boolean {
    const held = this.namespaceOf.get(key);
    if (held === namespace) return true;
    if (held !== undefined) this.release(key);
    const set = this.holders.get(namespace) ?? new Set<string>();
    if (set.size >= this.max) return false;
    set.add(key);
    this.holders.set(namespace, set);
    this.namespaceOf.set(key, namespace);
    return true;
  }

  /** Lets go of `key`'s place; harmless when it holds none. */
  release(key: string): void {
    const namespace = this.namespaceOf.get(key);
    if (namespace === undefined) return;
    this.namespaceOf.delete(key);
    const set = this.holders.get(namespace)!;
    set.delete(key);
    if (set.size === 0) this.holders.delete(namespace);
  }

  /** How many of `namespace`'s snapshots hold a place, for a message saying why one waits. */
  inFlight(namespace: string): number {
    return this.holders.get(namespace)?.size ?? 0;
  }

  get limit(): number {
    return this.max;
  }
}
