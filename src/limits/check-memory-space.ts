// The free-space check as one call for the snapshot effects: the guest's RAM from its domain XML,
// the memory folder's free space from statfs, and the decision. Call it for `memory: true`
// snapshots before anything touches the guest.
import { parseDomainMemory } from "../hypervisor/domain-memory.ts";
import { freeBytes as statfsFreeBytes, type FreeSpacePort } from "./free-space.ts";
import { decideMemorySpace, type MemorySpaceDecision } from "./memory-space.ts";

export interface MemorySpaceCheck {
  /** The domain's live XML (the effects read it for the disk inventory anyway). */
  readonly domainXml: string;
  readonly folder: string;
  readonly reserveBytes: number;
  /** RAM of memory snapshots admitted on this host and not yet written. */
  readonly committedBytes?: number;
  /** statfs by default; tests pass a fixed number. */
  readonly freeBytes?: FreeSpacePort;
}

/** Also returns the RAM it counted, to add to `committedBytes` while this snapshot is in flight. */
export async function checkMemorySpace(
  check: MemorySpaceCheck,
): Promise<MemorySpaceDecision & { readonly ramBytes: number }> {
  const ramBytes = parseDomainMemory(check.domainXml).currentBytes;
  const free = await (check.freeBytes ?? statfsFreeBytes)(check.folder);
  const decision = decideMemorySpace({
    freeBytes: free,
    ramBytes,
    reserveBytes: check.reserveBytes,
    committedBytes: check.committedBytes,
    folder: check.folder,
  });
  return { ...decision, ramBytes };
}
