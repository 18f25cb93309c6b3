// Room for a memory image: a memory snapshot writes the guest's RAM into the host's memory
// folder, so it is refused — before anything touches the guest — when the folder's free space
// is below that RAM plus a reserve left for the host. Pure; free space is measured by
// free-space.ts, RAM read by hypervisor/domain-memory.ts.
import { FailureReason } from "../api/reasons.ts";

export interface MemorySpaceInput {
  /** Bytes available in the memory folder's filesystem (statfs bavail × bsize). */
  readonly freeBytes: number;
  /** The guest's RAM: the image's size bound (DomainMemory.currentBytes). */
  readonly ramBytes: number;
  /** Bytes to leave free for the host whatever happens. */
  readonly reserveBytes: number;
  /** RAM of other memory snapshots on this host already admitted and not yet written. */
  readonly committedBytes?: number;
  /** The folder, for the message. */
  readonly folder: string;
}

export type MemorySpaceDecision =
  | { readonly allowed: true }
  | {
      readonly allowed: false;
      readonly reason: typeof FailureReason.InsufficientSpace;
      readonly message: string;
    };

/**
 * @example
 * decideMemorySpace({ freeBytes: 3 * GiB, ramBytes: 2 * GiB, reserveBytes: 1 * GiB, folder })
 * // { allowed: true }  — exactly enough is enough
 */
export function decideMemorySpace(input: MemorySpaceInput): MemorySpaceDecision {
  const committed = input.committedBytes ?? 0;
  const needed = input.ramBytes + input.reserveBytes + committed;
  if (input.freeBytes >= needed) return { allowed: true };
  const others = committed > 0 ? ` + ${formatBytes(committed)} for memory snapshots in flight` : "";
  return {
    allowed: false,
    reason: FailureReason.InsufficientSpace,
    message:
      `not enough room for the memory image: ${input.folder} has ${formatBytes(input.freeBytes)} free, ` +
      `the guest's RAM needs ${formatBytes(input.ramBytes)} + ${formatBytes(input.reserveBytes)} reserve${others}`,
  };
}

/** 1536 MiB → "1.5 GiB". */
export function formatBytes(bytes: number): string {
  const units = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
  let value = bytes;
  let unit = 0;
  while (Math.abs(value) >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  const text = unit === 0 ? String(value) : value.toFixed(1).replace(/\.0$/, "");
  return `${text} ${units[unit]}`;
}

/**
 * A byte size as a flag gives it: a whole number of bytes, or with a Kubernetes binary suffix
 * (Ki, Mi, Gi, Ti) or decimal one (k, M, G, T).
 *
 * @example
 * parseByteSize("1Gi")  // 1073741824
 */
export function parseByteSize(text: string): number {
  const match = /^(\d+)(Ki|Mi|Gi|Ti|k|M|G|T)?$/.exec(text.trim());
  if (!match) throw new Error(`${JSON.stringify(text)} is not a size like 1Gi, 512Mi or 1000000`);
  const factors: Record<string, number> = {
    Ki: 2 ** 10,
    Mi: 2 ** 20,
    Gi: 2 ** 30,
    Ti: 2 ** 40,
    k: 1e3,
    M: 1e6,
    G: 1e9,
    T: 1e12,
  };
  const bytes = Number(match[1]) * (match[2] === undefined ? 1 : factors[match[2]]!);
  if (!Number.isSafeInteger(bytes)) throw new Error(`${JSON.stringify(text)} is too large`);
  return bytes;
}
