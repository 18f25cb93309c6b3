// Reads and writes of one custom resource's objects, for any kind given its descriptor. Status
// goes through the status subresource and finalizers through the main resource, both as JSON
// merge patches carrying metadata.resourceVersion, so every write is conditional and a
// concurrent change comes back as a ConflictError (HTTP 409), never as a silently lost update.
import {
  ApiException,
  CustomObjectsApi,
  PatchStrategy,
  setHeaderOptions,
  type KubeConfig,
} from "@kubernetes/client-node";
import { objectKey, type KubeObject, type ResourceDescriptor, type StatusOf } from "./resource.ts";

export const FIELD_MANAGER = "vmsnap-agent";

/** The write was refused because the object changed since it was read (HTTP 409). */
export class ConflictError extends Error {
  override readonly name = "ConflictError";
}

/** The create was refused because an object of that name exists (HTTP 409 on create). */
export class AlreadyExistsError extends Error {
  override readonly name = "AlreadyExistsError";
}

/** What a reconciler needs: read one object, write its status and its finalizers. */
export interface ReconcileClient<T extends KubeObject> {
  /** The object as the server has it now; undefined when it does not exist. */
  get(namespace: string, name: string): Promise<T | undefined>;
  /** Replaces the status of `obj` if it is unchanged since read; the object as written. */
  patchStatus(obj: T, status: StatusOf<T>): Promise<T>;
  /** Sets the finalizers of `obj` if it is unchanged since read; the object as written. */
  setFinalizers(obj: T, finalizers: string[]): Promise<T>;
}

/** Everything else a controller may do with its kind's objects (or another kind's). */
export interface ObjectClient<T extends KubeObject> extends ReconcileClient<T> {
  /** Every object in `namespace` (all namespaces when undefined) matching the selectors. */
  list(
    namespace?: string,
    selectors?: { fieldSelector?: string; labelSelector?: string },
  ): Promise<T[]>;
  /** Creates `obj` (its namespace from metadata); the object as stored. AlreadyExistsError on 409. */
  create(obj: T): Promise<T>;
  /** Deletes the object; succeeds when it is already gone. */
  delete(namespace: string, name: string): Promise<void>;
}

const mergePatch = setHeaderOptions("Content-Type", PatchStrategy.MergePatch);
/** Objects per LIST request, as the informer pages. */
const LIST_PAGE_SIZE = 500;

interface ListResponse<T> {
  items?: T[];
  metadata?: { continue?: string };
}

export class KubeObjectClient<T extends KubeObject> implements ObjectClient<T> {
  private readonly api: CustomObjectsApi;

  constructor(
    kubeConfig: KubeConfig,
    private readonly resource: ResourceDescriptor,
  ) {
    this.api = kubeConfig.makeApiClient(CustomObjectsApi);
  }

  async get(namespace: string, name: string): Promise<T | undefined> {
    try {
      const request = { ...this.kind(), name };
      return (await (this.resource.namespaced
        ? this.api.getNamespacedCustomObject({ ...request, namespace })
        : this.api.getClusterCustomObject(request))) as T;
    } catch (err) {
      if (isStatus(err, 404)) return undefined;
      throw err;
    }
  }

  async list(
    namespace?: string,
    selectors: { fieldSelector?: string; labelSelector?: string } = {},
  ): Promise<T[]> {
    const items: T[] = [];
    let continueToken: string | undefined;
    do {
      const request = {
        ...this.kind(),
        ...selectors,
        limit: LIST_PAGE_SIZE,
        ...(continueToken ? { _continue: continueToken } : {}),
      };
      const page = (await (this.resource.namespaced && namespace
        ? this.api.listNamespacedCustomObject({ ...request, namespace })
        : this.api.listClusterCustomObject(request))) as ListResponse<T>;
      items.push(...(page.items ?? []));
      continueToken = page.metadata?.continue || undefined;
    } while (continueToken);
    return items;
  }

  async create(obj: T): Promise<T> {
    const request = { ...this.kind(), body: obj, fieldManager: FIELD_MANAGER };
    try {
      return (await (this.resource.namespaced
        ? this.api.createNamespacedCustomObject({ ...request, namespace: obj.metadata.namespace! })
        : this.api.createClusterCustomObject(request))) as T;
    } catch (err) {
      if (isStatus(err, 409)) throw new AlreadyExistsError(`${objectKey(obj)} already exists`);
      throw err;
    }
  }

  async delete(namespace: string, name: string): Promise<void> {
    const request = { ...this.kind(), name };
    try {
      await (this.resource.namespaced
        ? this.api.deleteNamespacedCustomObject({ ...request, namespace })
        : this.api.deleteClusterCustomObject(request));
    } catch (err) {
      if (!isStatus(err, 404)) throw err;
    }
  }

  async patchStatus(obj: T, status: StatusOf<T>): Promise<T> {
    return this.patch(
      obj,
      { metadata: { resourceVersion: obj.metadata.resourceVersion }, status },
      true,
    );
  }

  async setFinalizers(obj: T, finalizers: string[]): Promise<T> {
    return this.patch(
      obj,
      { metadata: { resourceVersion: obj.metadata.resourceVersion, finalizers } },
      false,
    );
  }

  private kind(): { group: string; version: string; plural: string } {
    const { group, version, plural } = this.resource;
    return { group, version, plural };
  }

  private async patch(obj: T, body: object, status: boolean): Promise<T> {
    const request = { ...this.kind(), name: obj.metadata.name!, body, fieldManager: FIELD_MANAGER };
    const namespace = obj.metadata.namespace!;
    try {
      if (!this.resource.namespaced) {
        return (await (status
          ? this.api.patchClusterCustomObjectStatus(request, mergePatch)
          : this.api.patchClusterCustomObject(request, mergePatch))) as T;
      }
      return (await (status
        ? this.api.patchNamespacedCustomObjectStatus({ ...request, namespace }, mergePatch)
        : this.api.patchNamespacedCustomObject({ ...request, namespace }, mergePatch))) as T;
    } catch (err) {
      if (isStatus(err, 409)) {
        throw new ConflictError(`${objectKey(obj)} changed since it was read`);
      }
      throw err;
    }
  }
}

function isStatus(err: unknown, code: number): boolean {
  return err instanceof ApiException && err.code === code;
}
