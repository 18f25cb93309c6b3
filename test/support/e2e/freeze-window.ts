// How the stall a guest's writer saw compares with the frozen window the controller reported,
// and how far apart they may honestly be. The guest measures the stall as `w - t` of the one
// write the freeze held up (guest uptime before its append, after its fsync); the controller
// reports `freezeDurationMs = thawedAt - frozenAt`, both taken when the freeze and thaw calls
// return, while the guest changes state somewhere inside those calls.
import type { HookCall, WriterRecord } from "../guest/index.ts";

export const STALL_TOLERANCE = {
  /**
   * The guest-seen stall may exceed the window by the freeze call's own tail: qemu-ga freezes
   * the filesystems one after the other and only then answers, through QEMU, libvirt and the
   * addon, before the controller takes frozenAt.
   */
  longerMs: 300,
  /**
   * It may fall short of the window by: up to one writer period (the held-up append starts at
   * most ~0.2 s after the freeze landed, more on a busy host); the thaw call's tail (after
   * FITHAW qemu-ga runs its fsfreeze hook, a shell script under emulation, before it answers);
   * and the guest clock's own losses (this guest keeps time by counting timer ticks,
   * `refined-jiffies`, and loses them whenever its vCPU is starved). Measured here: 0-180 ms short.
   */
  shorterMs: 700,
} as const;

/** The longest write among `records` in ms: with two writers, the closest to the window. */
export function longestStallMs(records: readonly WriterRecord[]): number {
  return Math.max(...records.map((r) => (r.w - r.t) * 1000));
}

/** [low, high] the guest-seen stall must fall in for a reported window of `freezeDurationMs`. */
export function stallRange(freezeDurationMs: number): [number, number] {
  return [
    freezeDurationMs - STALL_TOLERANCE.shorterMs,
    freezeDurationMs + STALL_TOLERANCE.longerMs,
  ];
}

/**
 * How long after FITHAW the hook's "thaw" stamp may be taken: qemu-ga forks the hook (a shell
 * under emulation) only once every filesystem is thawed. Measured here: 10-50 ms at load ~1.
 */
export const THAW_STAMP_LAG_S = 0.15;

/**
 * Slack for a write that read its start time just before the hook's "freeze" stamp and still
 * reached the filesystem only after FIFREEZE (the hook runs and exits in between).
 */
export const FREEZE_STAMP_SLACK_S = 0.05;

/**
 * Why `record` was not a write the freeze held up, or undefined when it was: it started inside
 * the guest's frozen span (after the hook's freeze stamp) and was still blocked when FITHAW came
 * (it ended no earlier than the hook's thaw stamp allows). Both on the guest's own clock, so no
 * host-guest clock offset enters; how long the write was held depends on where in the writer's
 * 0.2 s period the freeze landed, so its length proves nothing by itself.
 */
export function notHeldByFreeze(
  record: WriterRecord,
  freeze: HookCall,
  thaw: HookCall,
): string | undefined {
  if (record.t < freeze.up - FREEZE_STAMP_SLACK_S)
    return `it started at ${record.t} s, before the freeze (hook at ${freeze.up} s)`;
  if (record.t >= thaw.up)
    return `it started at ${record.t} s, after the thaw (hook at ${thaw.up} s)`;
  if (record.w < thaw.up - THAW_STAMP_LAG_S)
    return `it ended at ${record.w} s, while still frozen (thaw hook at ${thaw.up} s)`;
  return undefined;
}
