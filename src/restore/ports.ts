// The narrow interfaces the restore effects use. Production wires the real adapters
// (src/agent.ts); tests wire the same real adapters to test hosts.
import type { VMSnapshot } from "../api/types.ts";
import type { Hypervisor } from "../hypervisor/connection.ts";
import type { ReconcileClient } from "../kube/object-client.ts";

export type RestoreHypervisorPort = Pick<
  Hypervisor,
  | "domainInfo"
  | "domainInfoByUUID"
  | "domainMetadata"
  | "setDomainMetadata"
  | "domainXml"
  | "saveImageXml"
  | "defineXml"
  | "start"
  | "destroy"
  | "restore"
  | "resume"
  | "suspend"
  | "fsThaw"
  | "freezeStatus"
>;

/** The VMSnapshots a restore reads (this host's cache first) and pins with a finalizer. */
export interface SnapshotSource {
  /** From this agent's cache: this host's snapshots only, maybe a little behind. */
  cached(namespace: string, name: string): VMSnapshot | undefined;
  /** The API server's copy. */
  readonly client: Pick<ReconcileClient<VMSnapshot>, "get" | "setFinalizers">;
}
