// How the stall a guest's writer saw compares with the frozen window the controller reported,
// and how far apart they may honestly be. The guest measures the stall as `w - t` of the one
// write the freeze held up (guest uptime before its append, after its fsync); the controller
// reports `freezeDurationMs = thawedAt - frozenAt`, both taken when the freeze and thaw calls
// return, while the guest changes state somewhere inside those calls.
import type { WriterRecord } from "./guest/index.ts";

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
