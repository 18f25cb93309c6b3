// Scripted stand-ins for the API server behind the informer: a watch factory whose streams the
// test drives event by event, and a lister that answers list pages from a script. They let the
// unit tests reach paths a real kube-apiserver will not take on demand (410 Gone, an expired
// continue token, a stream that goes silent).
import type { ListPage, PageLister, PageRequest } from "../../../src/kube/informer-list.ts";
import type {
  WatchEventHandler,
  WatchFactory,
  WatchQuery,
} from "../../../src/kube/watch-stream.ts";

export interface FakeStream {
  readonly path: string;
  readonly query: WatchQuery;
  aborted: boolean;
  emit(type: string, object: unknown): void;
  /** Ends the stream as the server or network would: null for a clean close. */
  end(err: unknown): void;
}

export class FakeWatches {
  readonly streams: FakeStream[] = [];
  private waiters: Array<() => void> = [];

  readonly factory: WatchFactory = async (path, query, onEvent, onDone) => {
    const stream = makeStream(path, query, onEvent, onDone);
    this.streams.push(stream);
    for (const wake of this.waiters.splice(0)) wake();
    return { abort: () => (stream.aborted = true) };
  };

  /** The `index`-th stream opened (0-based), waiting for it if needed. */
  async nth(index: number, timeoutMs = 2_000): Promise<FakeStream> {
    const deadline = Date.now() + timeoutMs;
    while (this.streams.length <= index) {
      if (Date.now() > deadline) throw new Error(`watch #${index} was never opened`);
      await new Promise<void>((resolve) => {
        this.waiters.push(resolve);
        setTimeout(resolve, 20);
      });
    }
    return this.streams[index]!;
  }
}

function makeStream(
  path: string,
  query: WatchQuery,
  onEvent: WatchEventHandler,
  onDone: (err: unknown) => void,
): FakeStream {
  return {
    path,
    query,
    aborted: false,
    emit: (type, object) => onEvent(type, object),
    end: (err) => onDone(err),
  };
}

/** A lister that answers each page request with the next scripted answer. */
export class ScriptedLister {
  readonly requests: Array<Omit<PageRequest, "signal">> = [];
  private readonly script: Array<(request: PageRequest) => Promise<ListPage> | ListPage>;

  constructor(...script: Array<(request: PageRequest) => Promise<ListPage> | ListPage>) {
    this.script = script;
  }

  readonly lister: PageLister = async (request) => {
    const { signal: _signal, ...rest } = request;
    this.requests.push(rest);
    const answer = this.script.shift();
    if (!answer) {
      // Hangs, as a dead connection would, until the informer gives up on it.
      return new Promise<ListPage>((_, reject) =>
        request.signal.addEventListener("abort", () => reject(request.signal.reason)),
      );
    }
    return answer(request);
  };
}

/** A VMSnapshot as the API server would send it. */
export function snapshot(
  namespace: string,
  name: string,
  resourceVersion: string,
  node = "hv-1",
): Record<string, unknown> {
  return {
    apiVersion: "vmsnap.io/v1alpha1",
    kind: "VMSnapshot",
    metadata: {
      namespace,
      name,
      resourceVersion,
      uid: `uid-${namespace}-${name}`,
      managedFields: [{ manager: "kubectl", operation: "Apply", fieldsV1: { "f:spec": {} } }],
    },
    spec: { source: { domain: name, node } },
  };
}

export function page(resourceVersion: string, items: unknown[], cont?: string): ListPage {
  return { items, metadata: { resourceVersion, ...(cont ? { continue: cont } : {}) } };
}

/** A Status object as sent in a watch ERROR event. */
export function status(code: number, reason: string): Record<string, unknown> {
  return { kind: "Status", apiVersion: "v1", status: "Failure", code, reason };
}

export async function eventually(
  check: () => boolean,
  what: string,
  timeoutMs = 2_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for: ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}
