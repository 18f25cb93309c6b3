// Writes to VMSnapshot resources: status through the status subresource and finalizers through
// the main resource, both as JSON merge patches carrying metadata.resourceVersion, so every
// write is conditional and a concurrent change comes back as a Conflict (409), never as a
// silently lost update.
import {
  ApiException,
  CustomObjectsApi,
  PatchStrategy,
  setHeaderOptions,
  type KubeConfig,
} from "@kubernetes/client-node";
import { GROUP, PLURAL, VERSION, type VMSnapshot, type VMSnapshotStatus } from "../api/types.ts";

export const FIELD_MANAGER = "vmsnap-agent";

/** The write was refused because the object changed since it was read (HTTP 409). */
export class ConflictError extends Error {
  override readonly name = "ConflictError";
}

export interface SnapshotClient {
  get(namespace: string, name: string): Promise<VMSnapshot | undefined>;
  patchStatus(snapshot: VMSnapshot, status: VMSnapshotStatus): Promise<VMSnapshot>;
  setFinalizers(snapshot: VMSnapshot, finalizers: string[]): Promise<VMSnapshot>;
}

const mergePatch = setHeaderOptions("Content-Type", PatchStrategy.MergePatch);

export class KubeSnapshotClient implements SnapshotClient {
  private readonly api: CustomObjectsApi;

  constructor(kubeConfig: KubeConfig) {
    this.api = kubeConfig.makeApiClient(CustomObjectsApi);
  }

  async get(namespace: string, name: string): Promise<VMSnapshot | undefined> {
    try {
      return (await this.api.getNamespacedCustomObject({
        group: GROUP,
        version: VERSION,
        namespace,
        plural: PLURAL,
        name,
      })) as VMSnapshot;
    } catch (err) {
      if (err instanceof ApiException && err.code === 404) return undefined;
      throw err;
    }
  }

  async patchStatus(snapshot: VMSnapshot, status: VMSnapshotStatus): Promise<VMSnapshot> {
    return this.patch(
      snapshot,
      { metadata: { resourceVersion: snapshot.metadata.resourceVersion }, status },
      true,
    );
  }

  async setFinalizers(snapshot: VMSnapshot, finalizers: string[]): Promise<VMSnapshot> {
    return this.patch(
      snapshot,
      { metadata: { resourceVersion: snapshot.metadata.resourceVersion, finalizers } },
      false,
    );
  }

  private async patch(snapshot: VMSnapshot, body: object, status: boolean): Promise<VMSnapshot> {
    const request = {
      group: GROUP,
      version: VERSION,
      namespace: snapshot.metadata.namespace!,
      plural: PLURAL,
      name: snapshot.metadata.name!,
      body,
      fieldManager: FIELD_MANAGER,
    };
    try {
      const updated = status
        ? await this.api.patchNamespacedCustomObjectStatus(request, mergePatch)
        : await this.api.patchNamespacedCustomObject(request, mergePatch);
      return updated as VMSnapshot;
    } catch (err) {
      if (err instanceof ApiException && err.code === 409) {
        throw new ConflictError(
          `${snapshot.metadata.namespace}/${snapshot.metadata.name} changed since it was read`,
        );
      }
      throw err;
    }
  }
}
