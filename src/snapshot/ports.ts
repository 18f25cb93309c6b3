// The narrow interfaces the snapshot effects use: the parts of libvirt, the storage backends,
// the memory image and the thaw guard they need, and nothing else. Production wires the real
// adapters (main.ts); the integration tests wire the same real adapters to test hosts.
import type { Hypervisor } from "../hypervisor/connection.ts";

export type HypervisorPort = Pick<
  Hypervisor,
  | "domainInfo"
  | "domainInfoByUUID"
  | "domainMetadata"
  | "domainXml"
  | "fsFreeze"
  | "fsThaw"
  | "freezeStatus"
  | "suspend"
  | "resume"
>;

export interface MemoryImagePort {
  /** Saves the paused domain's RAM to `file` (mode 0600); every disk is left alone. */
  save(request: {
    domain: string;
    name: string;
    file: string;
    diskTargets: readonly string[];
    timeoutMs: number;
  }): Promise<{ file: string; bytes: number }>;
  /** Removes the memory snapshot and its file; succeeds when already gone. */
  remove(request: { domain: string; name: string; file: string }): Promise<void>;
}

/**
 * Live memory (spec.memoryMode Live): QEMU's background snapshot, driven through QMP
 * (src/hypervisor/background-snapshot.ts). prepare before the pause, arm inside it (resolves
 * once QEMU captured RAM and ran the vCPUs again), finish while the guest runs; cancel stops a
 * write in progress and removes the file.
 */
export interface LiveMemoryPort {
  prepare(request: { domain: string; file: string; timeoutMs: number }): Promise<void>;
  arm(request: { domain: string; file: string; timeoutMs: number }): Promise<void>;
  finish(request: {
    domain: string;
    file: string;
    timeoutMs: number;
  }): Promise<{ file: string; bytes: number }>;
  cancel(domain: string, file: string): Promise<void>;
}

/** The out-of-process guard that thaws (and resumes) a guest when its deadline passes. */
export interface ThawGuardPort {
  arm(entry: {
    id: string;
    domain: string;
    deadline: number;
    resumeIfPaused: boolean;
    /** The domain's UUID at the freeze: only that domain is thawed under this name. */
    uuid?: string;
  }): Promise<void>;
  disarm(id: string): Promise<void>;
}
