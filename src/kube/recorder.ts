// Kubernetes Events (events.k8s.io/v1) for what happened to an object of any kind (for a
// VMSnapshot: one per phase transition); the object it regards is named by its own apiVersion,
// kind, namespace, name and uid. Sent in the background through a bounded SendQueue, so an Event never delays a
// frozen guest's thaw; each carries the time it happened (eventTime), so the few sent at once
// may land in any order; a failed Event is logged, never retried into a storm.
import { eventName, reportingInstance } from "./event-names.ts";
import { EventsV1Api, V1MicroTime, type KubeConfig } from "@kubernetes/client-node";
import type { KubeObject } from "./resource.ts";
import { SendQueue } from "./send-queue.ts";

export const REPORTING_CONTROLLER = "vmsnap.io/agent";

/** Events of cluster-scoped objects go here, as client-go's recorder does. */
const CLUSTER_EVENTS_NAMESPACE = "default";

export interface EventSink {
  record(
    regarding: KubeObject,
    type: "Normal" | "Warning",
    reason: string,
    action: string,
    note: string,
  ): void;
  /** Resolves when every recorded Event has been sent (or has failed). */
  flush(): Promise<void>;
}

export class KubeEventRecorder implements EventSink {
  private readonly api: EventsV1Api;
  private readonly queue: SendQueue;
  private serial = 0;

  constructor(
    kubeConfig: KubeConfig,
    private readonly instance: string,
    private readonly log: (message: string, fields: Record<string, unknown>) => void = () => {},
  ) {
    this.api = kubeConfig.makeApiClient(EventsV1Api);
    this.queue = new SendQueue({
      onDrop: (dropped) => {
        // Once, then every 1000th: a stuck API server must not flood the log either.
        if (dropped === 1 || dropped % 1000 === 0)
          this.log("events dropped: the API server is not keeping up", { dropped });
      },
    });
  }

  record(
    regarding: KubeObject,
    type: "Normal" | "Warning",
    reason: string,
    action: string,
    note: string,
  ): void {
    const { metadata } = regarding;
    const namespace = metadata.namespace ?? CLUSTER_EVENTS_NAMESPACE;
    const now = new V1MicroTime();
    const body = {
      metadata: {
        name: eventName(
          metadata.name!,
          `${Date.now().toString(36)}${(this.serial++).toString(36)}`,
        ),
        namespace,
      },
      eventTime: now,
      reportingController: REPORTING_CONTROLLER,
      reportingInstance: reportingInstance(this.instance),
      action,
      reason,
      type,
      note: note.slice(0, 1024),
      regarding: {
        apiVersion: regarding.apiVersion!,
        kind: regarding.kind!,
        ...(metadata.namespace === undefined ? {} : { namespace: metadata.namespace }),
        name: metadata.name!,
        uid: metadata.uid!,
        resourceVersion: metadata.resourceVersion!,
      },
    };
    this.queue.push(async () => {
      try {
        await this.api.createNamespacedEvent({ namespace, body });
      } catch (err) {
        this.log("event not recorded", { reason, error: String(err) });
      }
    });
  }

  flush(): Promise<void> {
    return this.queue.drained();
  }
}
