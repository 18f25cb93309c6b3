// What a test does with VMSnapshotSchedules and their runs, the way a user does it: apply with
// kubectl, read back, list the runs by their label, and note the moment each run appears on a
// watch (the lateness a user would see).
import { Watch } from "@kubernetes/client-node";
import {
  SCHEDULE_LABEL,
  type VMSnapshotSchedule,
  type VMSnapshotScheduleSpec,
} from "../../../src/api/schedule-types.ts";
import {
  GROUP,
  PLURAL,
  VERSION,
  type VMSnapshot,
  type VMSnapshotSpec,
} from "../../../src/api/types.ts";
import { runName } from "../../../src/schedule/names.ts";
import { runOf } from "../../../src/schedule/plan.ts";
import type { ControlPlane } from "./control-plane.ts";

export interface ScheduleClient {
  apply(name: string, spec: VMSnapshotScheduleSpec): Promise<VMSnapshotSchedule>;
  get(name: string): Promise<VMSnapshotSchedule | undefined>;
  /**
   * Creates the run `schedule` would create for `at`, exactly as the agent makes it (name, label,
   * annotation, controller reference), with `spec` instead of its template if given: a history
   * of runs without waiting for their instants.
   */
  createRun(schedule: VMSnapshotSchedule, at: Date, spec?: VMSnapshotSpec): Promise<VMSnapshot>;
  /** The VMSnapshots labelled as runs of `schedule`, by name. */
  runs(schedule: string): Promise<VMSnapshot[]>;
  /** The reasons of the Events about the object named `regarding` (schedule or run). */
  eventReasons(regarding: string): Promise<string[]>;
  /** Merge-patches the schedule's spec, as `kubectl patch --type=merge` does. */
  patchSpec(name: string, spec: Partial<VMSnapshotScheduleSpec>): Promise<void>;
  /** Starts noting when each VMSnapshot of the namespace first appears on a watch. */
  watchArrivals(): Promise<{ arrivals: Map<string, number>; stop(): void }>;
}

export function schedulesIn(cp: ControlPlane, namespace: string): ScheduleClient {
  const kubectl = async (args: string[], input?: string) => {
    const r = await cp.kubectl(args, input);
    if (r.code !== 0) throw new Error(`kubectl ${args.join(" ")}: ${r.stderr}`);
    return r.stdout;
  };
  return {
    async apply(name, spec) {
      const manifest = {
        apiVersion: `${GROUP}/${VERSION}`,
        kind: "VMSnapshotSchedule",
        metadata: { name, namespace },
        spec,
      };
      // JSON, not YAML: kubectl reads YAML 1.1 (an unquoted `yes` would be a boolean).
      const out = await kubectl(["create", "-o", "json", "-f", "-"], JSON.stringify(manifest));
      return JSON.parse(out) as VMSnapshotSchedule;
    },
    async get(name) {
      const r = await cp.kubectl(["get", "vmsnapsched", name, "-n", namespace, "-o", "json"]);
      if (r.code !== 0 && r.stderr.includes("NotFound")) return undefined;
      if (r.code !== 0) throw new Error(`kubectl get ${name}: ${r.stderr}`);
      return JSON.parse(r.stdout) as VMSnapshotSchedule;
    },
    async createRun(schedule, at, spec) {
      const run = runOf(schedule, runName(schedule.metadata.name!, at), at);
      if (spec) run.spec = spec;
      const out = await kubectl(["create", "-o", "json", "-f", "-"], JSON.stringify(run));
      return JSON.parse(out) as VMSnapshot;
    },
    async runs(schedule) {
      const out = await kubectl([
        "get",
        "vmsnap",
        "-n",
        namespace,
        "-l",
        `${SCHEDULE_LABEL}=${schedule}`,
        "-o",
        "json",
      ]);
      return (JSON.parse(out) as { items: VMSnapshot[] }).items.sort((a, b) =>
        a.metadata.name! < b.metadata.name! ? -1 : 1,
      );
    },
    async eventReasons(regarding) {
      const out = await kubectl([
        "get",
        "events.events.k8s.io",
        "-n",
        namespace,
        "-o",
        "json",
        "--field-selector",
        `regarding.name=${regarding}`,
      ]);
      return (JSON.parse(out) as { items: Array<{ reason: string }> }).items.map((e) => e.reason);
    },
    async patchSpec(name, spec) {
      await kubectl([
        "patch",
        "vmsnapsched",
        name,
        "-n",
        namespace,
        "--type=merge",
        "-p",
        JSON.stringify({ spec }),
      ]);
    },
    async watchArrivals() {
      const arrivals = new Map<string, number>();
      const path = `/apis/${GROUP}/${VERSION}/namespaces/${namespace}/${PLURAL}`;
      let resourceVersion: string | undefined;
      let current: AbortController | undefined;
      let stopped = false;
      // client-node ends a watch after 30 s without a byte (its timeout is private): each end
      // resumes from the newest resourceVersion seen, so no creation is missed or re-dated.
      const open = async (): Promise<void> => {
        current = await new Watch(cp.kubeConfig()).watch(
          path,
          { allowWatchBookmarks: true, ...(resourceVersion && { resourceVersion }) },
          (type: string, object: VMSnapshot) => {
            resourceVersion = object.metadata.resourceVersion ?? resourceVersion;
            const name = object.metadata.name!;
            if (type === "ADDED" && !arrivals.has(name)) arrivals.set(name, Date.now());
          },
          () => {
            if (!stopped) void open();
          },
        );
      };
      await open();
      return {
        arrivals,
        stop: () => {
          stopped = true;
          current?.abort();
        },
      };
    },
  };
}
