// Which resource the plumbing works on: a descriptor names a custom resource's API group,
// version, plural and kind, and whether its objects live in a namespace. The informer, the object
// client and the Event recorder take one, so a new kind (VMRestore, VMSnapshotSchedule) is one
// descriptor constant in src/api, not a copy of the plumbing.
import type { V1ObjectMeta } from "@kubernetes/client-node";

export interface ResourceDescriptor {
  /** API group, e.g. "vmsnap.io". */
  readonly group: string;
  /** API version within the group, e.g. "v1alpha1". */
  readonly version: string;
  /** The lowercase plural in URLs, e.g. "vmsnapshots". */
  readonly plural: string;
  /** The `kind` of its objects, e.g. "VMSnapshot". */
  readonly kind: string;
  /** Whether objects live in a namespace (false: cluster-scoped). */
  readonly namespaced: boolean;
}

/** What every Kubernetes object has; the plumbing needs nothing else of it. */
export interface KubeObject {
  apiVersion?: string;
  kind?: string;
  metadata: V1ObjectMeta;
}

/** The type of an object's `status`, for kinds that have one. */
export type StatusOf<T> = T extends { status?: infer S } ? S : never;

/**
 * The URL path of the resource's collection: in `namespace`, or across all namespaces (and for
 * cluster-scoped resources) when it is undefined.
 */
export function collectionPath(resource: ResourceDescriptor, namespace?: string): string {
  const scope =
    resource.namespaced && namespace ? `/namespaces/${encodeURIComponent(namespace)}` : "";
  return `/apis/${resource.group}/${resource.version}${scope}/${resource.plural}`;
}

/**
 * `namespace/name` (just `name` for a cluster-scoped object): the key the informer's cache and
 * the work queue carry, and the one name logs use for an object.
 */
export function objectKey(obj: { metadata?: { namespace?: string; name?: string } }): string {
  const namespace = obj.metadata?.namespace;
  const name = obj.metadata?.name ?? "";
  return namespace ? `${namespace}/${name}` : name;
}
