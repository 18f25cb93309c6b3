// A watch on the demo namespace that prints every phase a VMSnapshot enters, the moment the API
// server says so, with the wall-clock time, the time since it was applied, and what that phase
// achieved (frozen, disks, memory, thawed). It is also how the demo knows a snapshot finished.
import { Watch, type KubeConfig } from "@kubernetes/client-node";
import { GROUP, PLURAL, VERSION, type Phase, type VMSnapshot } from "../../src/api/types.ts";
import { clock, event, mib } from "./say.ts";

const FINAL: ReadonlySet<Phase | undefined> = new Set<Phase | undefined>(["Succeeded", "Failed"]);

interface Tracked {
  appliedAt: number;
  phase?: Phase;
  last?: VMSnapshot;
  waiters: Array<(snapshot: VMSnapshot) => void>;
}

export class PhaseWatch {
  private readonly tracked = new Map<string, Tracked>();
  private abort: AbortController | undefined;
  private stopped = false;

  constructor(
    private readonly kubeConfig: KubeConfig,
    private readonly namespace: string,
  ) {}

  async start(): Promise<void> {
    this.abort = await new Watch(this.kubeConfig).watch(
      `/apis/${GROUP}/${VERSION}/namespaces/${this.namespace}/${PLURAL}`,
      {},
      (type: string, object: VMSnapshot) => this.onEvent(type, object),
      (err: unknown) => {
        // The API server ends watches now and then; a demo that stops printing would look hung.
        if (this.stopped) return;
        if (err) event(`(watch ended: ${String(err)}; watching again)`);
        this.start().catch((e: unknown) => event(`(could not watch again: ${String(e)})`));
      },
    );
  }

  /** Call just before applying `name`, so its times are relative to the apply. */
  applying(name: string): void {
    this.tracked.set(name, { appliedAt: Date.now(), waiters: [] });
  }

  /** Resolves when `name` reaches Succeeded or Failed. */
  final(name: string, timeoutMs: number): Promise<VMSnapshot> {
    const t = this.track(name);
    if (FINAL.has(t.phase) && t.last) return Promise.resolve(t.last);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`${name} did not finish within ${timeoutMs / 1000} s`)),
        timeoutMs,
      );
      t.waiters.push((snapshot) => {
        clearTimeout(timer);
        resolve(snapshot);
      });
    });
  }

  stop(): void {
    this.stopped = true;
    this.abort?.abort();
  }

  private track(name: string): Tracked {
    let t = this.tracked.get(name);
    if (!t) {
      t = { appliedAt: Date.now(), waiters: [] };
      this.tracked.set(name, t);
    }
    return t;
  }

  private onEvent(type: string, object: VMSnapshot): void {
    const name = object.metadata.name!;
    const t = this.track(name);
    t.last = object;
    if (type === "DELETED") {
      event(`${name.padEnd(16)} deleted`);
      return;
    }
    const phase = object.status?.phase;
    if (!phase || phase === t.phase) return;
    t.phase = phase;
    const now = Date.now();
    const since = `+${((now - t.appliedAt) / 1000).toFixed(3)} s`;
    event(`${name.padEnd(16)} ${phase.padEnd(17)} ${since.padStart(10)}  ${describe(object)}`, now);
    if (FINAL.has(phase)) for (const resolve of t.waiters.splice(0)) resolve(object);
  }
}

/** What the phase just entered achieved, in a few words from status. */
export function describe(snapshot: VMSnapshot): string {
  const st = snapshot.status ?? {};
  const ms = (iso: string | undefined) => (iso ? clock(Date.parse(iso)) : "?");
  switch (st.phase) {
    case "Pending":
      return `picked up by the controller on ${snapshot.spec.source.node}`;
    case "Frozen":
      return `guest filesystems frozen at ${ms(st.frozenAt)} (thaw deadline ${ms(st.freezeDeadline)})`;
    case "DisksSnapshotted":
      return (st.disks ?? []).map((d) => `${d.target} ${d.backend}`).join(", ") + " snapshotted";
    case "MemorySaved":
      return (
        `RAM saved (${st.memory ? mib(st.memory.bytes) : "?"})` +
        (st.downtimeMs !== undefined ? `, vCPUs paused ${st.downtimeMs} ms` : "")
      );
    case "Thawed":
      return `thawed at ${ms(st.thawedAt)}: frozen for ${st.freezeDurationMs} ms`;
    case "Succeeded":
      return "readyToUse";
    case "Failed":
      return `${st.error?.reason}: ${st.error?.message}`;
    default:
      return "";
  }
}
