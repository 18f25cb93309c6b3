// The controller's side of the thaw guarantee: a handle on the guard process (guard-main.ts)
// that thaws a frozen guest by its deadline whatever happens to the controller.
//
// Arm before freezing, disarm after thawing. `arm` resolves once the guard has the entry, so a
// freeze that follows is always covered. If the guard dies, a new one is started and every live
// entry is armed in it again (an entry whose deadline passed meanwhile fires at once). If the
// controller dies, the guard's stdin closes and it thaws every armed guest immediately.
import type { GuardConfig } from "./guard-args.ts";
import { DEFAULT_THAW_POLICY, type ThawPolicy } from "./thaw.ts";
import { describeExit, GuardProcess, type GuardExit, type GuardStderr } from "./guard-process.ts";
import { PendingCall } from "./pending-call.ts";
import {
  decodeCommand,
  encode,
  type ArmCommand,
  type Command,
  type Reply,
  type ThawedReply,
} from "./protocol.ts";

export type { GuardStderr } from "./guard-process.ts";
export type { ThawedReply } from "./protocol.ts";

export interface ArmEntry {
  /** The entry's key, e.g. the VMSnapshot UID; arming it again replaces the entry. */
  readonly id: string;
  /** libvirt domain name. */
  readonly domain: string;
  /** Thaw at this instant, epoch ms: the freeze's start plus freezeTimeout. */
  readonly deadline: number;
  /** Resume the vCPUs first when the domain is paused (VM snapshots pause them). */
  readonly resumeIfPaused?: boolean;
}

export interface ThawGuardOptions {
  /** libvirt URI for the guard's own connection: the one the controller uses. */
  readonly uri: string;
  /** How the guard retries a failing thaw. */
  readonly policy?: Partial<ThawPolicy>;
  /** arm/disarm fail when the guard has not acknowledged within this; default 2 s. */
  readonly ackTimeoutMs?: number;
  /** Longest start of a guard process (tsx compiles on start in development); default 30 s. */
  readonly startTimeoutMs?: number;
  /** Delay before restarting a dead guard, doubling up to restartMaxMs while starts fail. */
  readonly restartMinMs?: number;
  readonly restartMaxMs?: number;
  /** How long close() waits for the guard to thaw and exit; default 30 s. */
  readonly closeTimeoutMs?: number;
  /** Where the guard's JSON log goes; default the controller's stderr. */
  readonly stderr?: GuardStderr;
  /** The guard fired an entry (deadline, controller gone, or guard stopped). */
  readonly onThawed?: (report: ThawedReply) => void;
  /** A guard process died unasked; a new one is being started. */
  readonly onGuardExit?: (pid: number | undefined, how: string) => void;
}

/** arm/disarm could not be confirmed: treat the entry as not armed (do not freeze). */
export class GuardUnavailableError extends Error {
  override readonly name = "GuardUnavailableError";
}

type Settings = ThawGuardOptions &
  Required<
    Pick<
      ThawGuardOptions,
      | "ackTimeoutMs"
      | "startTimeoutMs"
      | "restartMinMs"
      | "restartMaxMs"
      | "closeTimeoutMs"
      | "stderr"
    >
  >;

const DEFAULTS = {
  ackTimeoutMs: 2_000,
  startTimeoutMs: 30_000,
  restartMinMs: 50,
  restartMaxMs: 5_000,
  closeTimeoutMs: 30_000,
  stderr: "inherit",
} as const;

interface Sent {
  readonly command: Command;
  readonly calls: PendingCall[];
}

export class ThawGuard {
  private proc: GuardProcess | undefined;
  private ready = false;
  private closed = false;
  /** Entries armed and not yet disarmed or fired: what a new guard must be given. */
  private readonly live = new Map<string, ArmCommand>();
  /** Commands written to the ready guard; it answers each one, in order. */
  private readonly inFlight: Sent[] = [];
  /** arm calls made while no guard was ready; answered by the re-arm when one is. */
  private readonly waitingArms = new Map<string, PendingCall[]>();
  private restartDelayMs: number;
  private restartTimer: NodeJS.Timeout | undefined;
  /** The start under way, if one is: close() lets it hand the live entries over first. */
  private launching: Promise<void> | undefined;

  private constructor(
    private readonly options: Settings,
    private readonly config: GuardConfig,
  ) {
    this.restartDelayMs = options.restartMinMs;
  }

  /**
   * Starts a guard process and resolves once it is connected to libvirt.
   *
   * @example
   * const guard = await ThawGuard.start({ uri: "qemu:///system" });
   * await guard.arm({ id: uid, domain: "web-1", deadline: Date.now() + 10_000 });
   * await hv.fsFreeze("web-1");
   * try { ...snapshot... } finally { await hv.fsThaw("web-1"); await guard.disarm(uid); }
   */
  static async start(options: ThawGuardOptions): Promise<ThawGuard> {
    const guard = new ThawGuard(
      { ...DEFAULTS, ...definedOnly(options), uri: options.uri },
      { ...DEFAULT_THAW_POLICY, ...definedOnly(options.policy ?? {}), uri: options.uri },
    );
    // Everything else the guard owns is unref'd; whoever awaits the start must not see the
    // process exit under it (an awaited arm is kept alive by its ack timer likewise).
    const keepAlive = setInterval(() => {}, 60_000);
    try {
      await guard.launch();
    } catch (err) {
      guard.closed = true;
      clearTimeout(guard.restartTimer);
      guard.proc?.kill();
      throw err;
    } finally {
      clearInterval(keepAlive);
    }
    return guard;
  }

  /** The current guard process's pid (undefined between a death and the restart). */
  get pid(): number | undefined {
    return this.proc?.pid;
  }

  /** Arms `entry`; resolves when the guard has it. Rejects with GuardUnavailableError. */
  arm(entry: ArmEntry): Promise<void> {
    if (this.closed) return Promise.reject(new GuardUnavailableError("thaw guard is closed"));
    let command: ArmCommand;
    try {
      // Checked as the guard will check it, so a bad entry fails here, not as a silent reject.
      const { id, domain, deadline } = entry;
      const resumeIfPaused = entry.resumeIfPaused ?? false;
      command = decodeCommand(
        encode({ type: "arm", id, domain, deadline, resumeIfPaused }).trimEnd(),
      ) as ArmCommand;
    } catch (err) {
      return Promise.reject(err as Error);
    }
    this.live.set(command.id, command);
    const call = this.call(command, () => {
      // The caller hears "not armed"; a newer arm of the same id is not ours to drop.
      if (this.live.get(command.id) === command) this.live.delete(command.id);
    });
    if (this.ready) this.send(command, [call]);
    else this.waitingArms.set(command.id, [...(this.waitingArms.get(command.id) ?? []), call]);
    return call.promise;
  }

  /** Disarms `id` (a no-op when it is not armed); resolves when the guard has forgotten it. */
  disarm(id: string): Promise<void> {
    if (this.closed) return Promise.reject(new GuardUnavailableError("thaw guard is closed"));
    this.live.delete(id);
    if (!this.ready) {
      // No guard holds it: arm calls still waiting for one are moot.
      for (const call of this.waitingArms.get(id) ?? []) call.resolve();
      this.waitingArms.delete(id);
      return Promise.resolve();
    }
    const command: Command = { type: "disarm", id };
    const call = this.call(command);
    this.send(command, [call]);
    return call.promise;
  }

  /** Stops the guard: it thaws every guest still armed, then exits. Pending calls fail. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.ready = false;
    clearTimeout(this.restartTimer);
    const error = new GuardUnavailableError("thaw guard closed");
    for (const sent of this.inFlight.splice(0)) for (const call of sent.calls) call.reject(error);
    for (const calls of this.waitingArms.values()) for (const call of calls) call.reject(error);
    this.waitingArms.clear();
    // A guard still starting is handed the live entries before its stdin closes; when the last
    // one died and none is starting, one more is started just to thaw them.
    if (this.launching) await this.launching.catch(() => {});
    else if (this.proc === undefined && this.live.size > 0) await this.launch().catch(() => {});
    const proc = this.proc;
    if (proc === undefined) return;
    proc.end();
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      proc.exited,
      new Promise((resolve) => (timer = setTimeout(resolve, this.options.closeTimeoutMs))),
    ]);
    clearTimeout(timer);
  }

  // ---- the guard process -----------------------------------------------------------------

  private launch(): Promise<void> {
    const attempt = this.spawnGuard().finally(() => {
      if (this.launching === attempt) this.launching = undefined;
    });
    this.launching = attempt;
    return attempt;
  }

  private async spawnGuard(): Promise<void> {
    const proc: GuardProcess = GuardProcess.spawn({
      config: this.config,
      stderr: this.options.stderr,
      startTimeoutMs: this.options.startTimeoutMs,
      onReply: (reply) => this.onReply(proc, reply),
      onBadReply: () => proc.kill(),
    });
    this.proc = proc;
    void proc.exited.then((exit) => this.onExit(proc, exit));
    await proc.ready;
    if (this.proc !== proc) return;
    this.restartDelayMs = this.options.restartMinMs;
    // The new guard gets every live entry; arm calls that waited for it are answered by these.
    for (const command of this.live.values()) {
      if (this.closed) proc.write(command);
      else this.send(command, this.waitingArms.get(command.id) ?? []);
      this.waitingArms.delete(command.id);
    }
    // Left: calls of entries no longer live (disarmed, or timed out); none is still waiting.
    for (const calls of this.waitingArms.values()) for (const call of calls) call.resolve();
    this.waitingArms.clear();
    if (this.closed) proc.end();
    else this.ready = true;
  }

  private onExit(proc: GuardProcess, exit: GuardExit): void {
    if (this.proc !== proc) return;
    this.proc = undefined;
    this.ready = false;
    if (this.closed) return;
    this.options.onGuardExit?.(proc.pid, describeExit(exit));
    // The dead guard's entries go to the next one; a disarm it never answered holds nothing.
    for (const { command, calls } of this.inFlight.splice(0)) {
      if (command.type === "arm" && this.live.has(command.id))
        this.waitingArms.set(command.id, [...(this.waitingArms.get(command.id) ?? []), ...calls]);
      else for (const call of calls) call.resolve();
    }
    this.scheduleRestart();
  }

  private scheduleRestart(): void {
    if (this.closed || this.restartTimer !== undefined) return;
    const delay = this.restartDelayMs;
    this.restartDelayMs = Math.min(delay * 2, this.options.restartMaxMs);
    this.restartTimer = setTimeout(() => {
      this.restartTimer = undefined;
      this.launch().catch(() => this.scheduleRestart());
    }, delay);
    // Restarting alone is no reason to keep the controller alive; a waiting call's timer is.
    this.restartTimer.unref();
  }

  private onReply(proc: GuardProcess, reply: Reply): void {
    if (this.proc !== proc) return;
    if (reply.type === "thawed") {
      if (this.live.get(reply.id)?.deadline === reply.deadline) this.live.delete(reply.id);
      this.options.onThawed?.(reply);
      return;
    }
    // Once closed, answers to calls already failed by close() are expected and meaningless.
    if ((reply.type !== "ack" && reply.type !== "rejected") || this.closed) return;
    const sent = this.inFlight[0];
    if (sent === undefined || (reply.type === "ack" && !answers(reply, sent.command))) {
      // Answers out of order: this guard is not speaking our protocol. A new one will.
      proc.kill();
      return;
    }
    this.inFlight.shift();
    if (reply.type === "ack") for (const call of sent.calls) call.resolve();
    else {
      if (sent.command.type === "arm" && this.live.get(sent.command.id) === sent.command)
        this.live.delete(sent.command.id);
      for (const call of sent.calls) call.reject(new GuardUnavailableError(reply.error));
    }
  }

  private send(command: Command, calls: PendingCall[]): void {
    this.inFlight.push({ command, calls });
    // A closed pipe means the guard is exiting: onExit hands the command to the next one.
    this.proc?.write(command);
  }

  /** A pending arm/disarm with its acknowledgement deadline. */
  private call(command: Command, onTimeout?: () => void): PendingCall {
    const ms = this.options.ackTimeoutMs;
    return new PendingCall(ms, (call) => {
      onTimeout?.();
      // A ready guard that does not answer is hung: replace it (onExit restarts it).
      if (this.ready && this.inFlight.some((sent) => sent.calls.includes(call))) this.proc?.kill();
      return new GuardUnavailableError(
        `thaw guard did not acknowledge ${command.type} ${command.id} within ${ms} ms`,
      );
    });
  }
}

/** `o` without its undefined properties, so they don't override defaults when spread. */
function definedOnly<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}

function answers(reply: Reply & { type: "ack" }, command: Command): boolean {
  return reply.op === command.type && reply.id === command.id;
}
