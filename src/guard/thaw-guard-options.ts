// What a ThawGuard can be told, for each way of reaching a guard, and the defaults: the timing
// of acknowledgements, starts and restarts, and the callbacks that report what the guard did.
import type { GuardStderr } from "./guard-process.ts";
import type { StateReply, ThawedReply } from "./protocol.ts";
import type { ThawPolicy } from "../hypervisor/thaw.ts";

/** Options of both ways of reaching a guard. */
export interface ThawGuardClientOptions {
  /** arm/disarm fail when the guard has not acknowledged within this; default 2 s. */
  readonly ackTimeoutMs?: number;
  /** Longest wait for a guard to be ready: a spawned one to start (tsx compiles on start in
   *  development), a sidecar to be reachable at all; default 30 s. */
  readonly startTimeoutMs?: number;
  /** Delay before replacing a lost guard (respawn, reconnect), doubling up to restartMaxMs
   *  while attempts fail. */
  readonly restartMinMs?: number;
  readonly restartMaxMs?: number;
  /** How long close() waits for the guard to thaw what is armed; default 30 s. */
  readonly closeTimeoutMs?: number;
  /** The guard fired an entry (deadline, controller gone, or guard stopped). */
  readonly onThawed?: (report: ThawedReply) => void;
  /** The guard's own state (armed entries, thaws overdue, retries), after each `ready` and
   *  whenever it changes: the guard has no metrics endpoint, the controller exports these. */
  readonly onState?: (state: StateReply, guardPid: number | undefined) => void;
  /** The guard was lost unasked (a spawned one died, a sidecar's connection closed); a new one
   *  is being started, or connected to. A sidecar that cannot be reached is reported once, when
   *  it is lost, not at every reconnect attempt. */
  readonly onGuardExit?: (pid: number | undefined, how: string) => void;
}

/** ThawGuard.start: a guard process of our own. */
export interface ThawGuardOptions extends ThawGuardClientOptions {
  /** libvirt URI for the guard's own connection: the one the controller uses. */
  readonly uri: string;
  /** How the guard retries a failing thaw. */
  readonly policy?: Partial<ThawPolicy>;
  /** Where the guard's JSON log goes; default the controller's stderr. */
  readonly stderr?: GuardStderr;
}

/** ThawGuard.connect: a sidecar guard (`guard-main --listen`), which has its own URI and log. */
export interface ThawGuardConnectOptions extends ThawGuardClientOptions {
  /** The guard's unix socket, e.g. /run/vmsnap/guard.sock. */
  readonly socketPath: string;
}

export type Settings = Required<
  Pick<
    ThawGuardClientOptions,
    "ackTimeoutMs" | "startTimeoutMs" | "restartMinMs" | "restartMaxMs" | "closeTimeoutMs"
  >
> &
  Pick<ThawGuardClientOptions, "onThawed" | "onGuardExit" | "onState">;

export const SPAWN_DEFAULTS = {
  ackTimeoutMs: 2_000,
  startTimeoutMs: 30_000,
  restartMinMs: 50,
  restartMaxMs: 5_000,
  closeTimeoutMs: 30_000,
} as const;

/** A failed connect costs next to nothing, and a sidecar back from a restart should be used at
 *  once: arms fail while it is unreachable. */
export const CONNECT_DEFAULTS = { ...SPAWN_DEFAULTS, restartMaxMs: 1_000 } as const;

/** `o` without its undefined properties, so they don't override defaults when spread. */
export function definedOnly<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}
