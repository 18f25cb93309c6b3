// The informer's LIST: every object of a resource that matches its selector, fetched in pages (`limit`/`continue`) so
// neither the API server nor the agent ever holds one huge response, each page bounded by a
// deadline so a dead connection cannot stall the agent. The resourceVersion it returns is where
// the following WATCH starts, so no change between the two is missed.
import {
  ApiException,
  CustomObjectsApi,
  Observable,
  type ConfigurationOptions,
  type KubeConfig,
  type ObservableMiddleware,
} from "@kubernetes/client-node";
import { forCache } from "./informer-store.ts";
import type { KubeObject, ResourceDescriptor } from "./resource.ts";

export interface ListPage {
  items?: unknown[];
  metadata?: { resourceVersion?: string; continue?: string };
}

export interface PageRequest {
  /** Empty for every object. */
  fieldSelector: string;
  limit: number;
  continueToken?: string;
  /** Aborted at the page deadline or on stop: the request must end then. */
  signal: AbortSignal;
}

/** Fetches one page of the list. */
export type PageLister = (request: PageRequest) => Promise<ListPage>;

export interface ListResult {
  readonly items: number;
  readonly resourceVersion: string;
  readonly pages: number;
}

/**
 * Receives each page's objects, already `forCache`d. `fromStart` is true for the first page of
 * a list, including a list restarted after its continue token expired: whatever the receiver
 * collected from earlier pages belongs to an abandoned snapshot.
 */
export type PageReceiver<T> = (items: T[], fromStart: boolean) => void;

/**
 * Pages of `resource` through client-node's CustomObjectsApi, in `namespace` or in all (always
 * all for a cluster-scoped resource).
 */
export function customObjectsLister(
  kubeConfig: KubeConfig,
  resource: ResourceDescriptor,
  namespace?: string,
): PageLister {
  const api = kubeConfig.makeApiClient(CustomObjectsApi);
  const inNamespace = resource.namespaced ? namespace : undefined;
  return async ({ fieldSelector, limit, continueToken, signal }) => {
    const common = {
      group: resource.group,
      version: resource.version,
      plural: resource.plural,
      ...(fieldSelector ? { fieldSelector } : {}),
      limit,
      _continue: continueToken,
    };
    const options = abortedBy(signal);
    return (await (inNamespace
      ? api.listNamespacedCustomObject({ ...common, namespace: inNamespace }, options)
      : api.listClusterCustomObject(common, options))) as ListPage;
  };
}

/** The generated client takes no AbortSignal; a middleware puts one on the request. */
function abortedBy(signal: AbortSignal): ConfigurationOptions {
  const middleware: ObservableMiddleware = {
    pre: (request) => {
      request.setSignal(signal);
      return new Observable(Promise.resolve(request));
    },
    post: (response) => new Observable(Promise.resolve(response)),
  };
  return { middleware: [middleware], middlewareMergeStrategy: "append" };
}

/** Whether `err` says a continue token or resourceVersion is too old (HTTP 410 Gone). */
export function isGone(err: unknown): boolean {
  if (err instanceof ApiException) return err.code === 410;
  const e = err as { statusCode?: unknown; code?: unknown } | null;
  return e?.statusCode === 410 || e?.code === 410;
}

/**
 * Lists everything matching `fieldSelector`, `pageSize` objects at a time, each page within
 * `pageTimeoutMs`, handing each page to `onPage` as it arrives so that only one page of raw
 * objects is alive at a time. A continue token that expired mid-way (410) restarts the list from
 * the beginning: stitching pages from two snapshots could miss a deletion.
 */
export async function listAll<T extends KubeObject>(
  lister: PageLister,
  fieldSelector: string,
  pageSize: number,
  pageTimeoutMs: number,
  stopSignal: AbortSignal,
  onPage: PageReceiver<T>,
): Promise<ListResult> {
  for (;;) {
    let items = 0;
    let continueToken: string | undefined;
    let pages = 0;
    try {
      for (;;) {
        const signal = AbortSignal.any([stopSignal, AbortSignal.timeout(pageTimeoutMs)]);
        const page = await lister({ fieldSelector, limit: pageSize, continueToken, signal });
        const objects = (page.items ?? []).map((item) => forCache<T>(item));
        onPage(objects, pages === 0);
        pages += 1;
        items += objects.length;
        continueToken = page.metadata?.continue || undefined;
        if (!continueToken) {
          return { items, resourceVersion: page.metadata?.resourceVersion ?? "", pages };
        }
      }
    } catch (err) {
      if (!(continueToken && isGone(err)) || stopSignal.aborted) throw err;
    }
  }
}
