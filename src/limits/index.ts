// Limits on one host: room for memory images, and a namespace's share of the snapshots in flight.
export { checkMemorySpace, type MemorySpaceCheck } from "./check-memory-space.ts";
export { freeBytes, type FreeSpacePort } from "./free-space.ts";
export {
  decideMemorySpace,
  formatBytes,
  parseByteSize,
  type MemorySpaceDecision,
  type MemorySpaceInput,
} from "./memory-space.ts";
export { NamespaceCap } from "./namespace-cap.ts";
