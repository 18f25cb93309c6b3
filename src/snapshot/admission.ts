// Who may work now: one snapshot in flight per domain (a second one waits, it never interleaves
// its freeze with the first), and at most N guests frozen at once on this host, so a burst of
// snapshots never freezes every guest of a hypervisor together.

export class Admission {
  private readonly domainHolders = new Map<string, string>();
  private readonly frozenHolders = new Set<string>();

  constructor(private readonly maxFrozen: number) {}

  /** Takes (or re-takes) the domain for `key`; false when another snapshot holds it. */
  claimDomain(domain: string, key: string): boolean {
    const holder = this.domainHolders.get(domain);
    if (holder !== undefined && holder !== key) return false;
    this.domainHolders.set(domain, key);
    return true;
  }

  /** Who holds the domain, for a message saying what a waiting snapshot waits for. */
  domainHolder(domain: string): string | undefined {
    return this.domainHolders.get(domain);
  }

  /** Takes a freeze slot for `key` (idempotent); false when the host is at its cap. */
  claimFreezeSlot(key: string): boolean {
    if (this.frozenHolders.has(key)) return true;
    if (this.frozenHolders.size >= this.maxFrozen) return false;
    this.frozenHolders.add(key);
    return true;
  }

  releaseFreezeSlot(key: string): void {
    this.frozenHolders.delete(key);
  }

  /** Lets go of everything `key` holds. */
  release(domain: string, key: string): void {
    if (this.domainHolders.get(domain) === key) this.domainHolders.delete(domain);
    this.frozenHolders.delete(key);
  }

  /** Lets go of everything `key` holds, whichever domain (its object is gone). */
  releaseKey(key: string): void {
    for (const [domain, holder] of this.domainHolders) {
      if (holder === key) this.domainHolders.delete(domain);
    }
    this.frozenHolders.delete(key);
  }

  get frozenCount(): number {
    return this.frozenHolders.size;
  }
}
