// The controller's side of the thaw guarantee: a handle on a guard (guard-main.ts) that thaws a
// frozen guest by its deadline whatever happens to the controller.
//
// Arm before freezing, disarm after thawing. `arm` resolves once the guard has the entry, so a
// freeze that follows is always covered; when no guard can be reached it rejects, and the
// caller must not freeze. The guard is either spawned (`start`: development, tests) or a
// sidecar reached over a unix socket (`connect`: production, where the controller is PID 1 of
// its container and a child would die with it). If the guard is lost, a new one is spawned or
// connected to, and every live entry is armed in it again (an entry whose deadline passed
// meanwhile fires at once). If the controller dies, the guard sees its stdin or connection
// close and thaws every guest this controller armed, immediately.
import { checkSocketPath, type GuardConfig } from "./guard-args.ts";
import { GuardConnection } from "./guard-connection.ts";
import type { GuardLink, LinkHandlers } from "./guard-link.ts";
import { GuardProcess } from "./guard-process.ts";
import { PendingCall } from "./pending-call.ts";
import { decodeCommand, encode, type ArmCommand, type Command, type Reply } from "./protocol.ts";
import { GUARD_THAW_POLICY } from "../hypervisor/thaw.ts";
import {
  CONNECT_DEFAULTS,
  definedOnly,
  SPAWN_DEFAULTS,
  type Settings,
  type ThawGuardConnectOptions,
  type ThawGuardOptions,
} from "./thaw-guard-options.ts";

export type { GuardStderr } from "./guard-process.ts";
export type { StateReply, ThawedReply } from "./protocol.ts";
export type {
  ThawGuardClientOptions,
  ThawGuardConnectOptions,
  ThawGuardOptions,
} from "./thaw-guard-options.ts";

export interface ArmEntry {
  /** The entry's key, e.g. the VMSnapshot UID; arming it again replaces the entry. */
  readonly id: string;
  /** libvirt domain name. */
  readonly domain: string;
  /** Thaw at this instant, epoch ms: the freeze's start plus freezeTimeout. */
  readonly deadline: number;
  /** Resume the vCPUs first when the domain is paused (VM snapshots pause them). */
  readonly resumeIfPaused?: boolean;
  /** The domain's UUID at the freeze: the guard thaws only that domain under this name. */
  readonly uuid?: string;
}

/** arm/disarm could not be confirmed: treat the entry as not armed (do not freeze). */
export class GuardUnavailableError extends Error {
  override readonly name = "GuardUnavailableError";
}

interface Sent {
  readonly command: Command;
  readonly calls: PendingCall[];
}

type OpenLink = (handlers: LinkHandlers) => GuardLink;

export class ThawGuard {
  private link: GuardLink | undefined;
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
  /** Links that got as far as `ready`: only their loss is news when connecting (a sidecar
   *  being down would otherwise be reported at every reconnect attempt). */
  private readonly wasReady = new WeakSet<GuardLink>();
  private readyWaiters: Array<() => void> = [];

  private constructor(
    private readonly options: Settings,
    private readonly open: OpenLink,
    private readonly reportFailedStarts: boolean,
  ) {
    this.restartDelayMs = options.restartMinMs;
  }

  /**
   * Starts a guard process of our own and resolves once it is connected to libvirt.
   *
   * @example
   * const guard = await ThawGuard.start({ uri: "qemu:///system" });
   * await guard.arm({ id: uid, domain: "web-1", deadline: Date.now() + 10_000 });
   * await hv.fsFreeze("web-1");
   * try { ...snapshot... } finally { await hv.fsThaw("web-1"); await guard.disarm(uid); }
   */
  static async start(options: ThawGuardOptions): Promise<ThawGuard> {
    const config: GuardConfig = {
      ...GUARD_THAW_POLICY,
      ...definedOnly(options.policy ?? {}),
      uri: options.uri,
    };
    const stderr = options.stderr ?? "inherit";
    const guard = new ThawGuard(
      { ...SPAWN_DEFAULTS, ...definedOnly(options) },
      (handlers) => GuardProcess.spawn({ ...handlers, config, stderr }),
      true,
    );
    await guard.firstStart(() => guard.launch());
    return guard;
  }

  /**
   * Connects to a sidecar guard (`guard-main --listen PATH`), retrying until it answers or
   * startTimeoutMs pass. Later losses of the connection are repaired in the background.
   *
   * @example
   * const guard = await ThawGuard.connect({ socketPath: "/run/vmsnap/guard.sock" });
   * await guard.arm({ id: uid, domain: "web-1", deadline: Date.now() + 10_000 }); // then freeze
   */
  static async connect(options: ThawGuardConnectOptions): Promise<ThawGuard> {
    const socketPath = checkSocketPath(options.socketPath);
    const guard = new ThawGuard(
      { ...CONNECT_DEFAULTS, ...definedOnly(options) },
      (handlers) => GuardConnection.open({ ...handlers, socketPath }),
      false,
    );
    await guard.firstStart(async () => {
      // Failed attempts go through the restart path (with its backoff) until one is ready.
      const ready = guard.untilReady();
      guard.launch().catch(() => guard.scheduleRestart());
      let timer: NodeJS.Timeout | undefined;
      const timedOut = new Promise<never>((_, reject) => {
        timer = setTimeout(
          () =>
            reject(
              new Error(
                `no thaw guard answered at ${socketPath} within ${guard.options.startTimeoutMs} ms`,
              ),
            ),
          guard.options.startTimeoutMs,
        );
      });
      try {
        await Promise.race([ready, timedOut]);
      } finally {
        clearTimeout(timer);
      }
    });
    return guard;
  }

  /** The current guard's pid (undefined between a loss and the next guard's `ready`). */
  get pid(): number | undefined {
    return this.link?.pid;
  }

  /** Arms `entry`; resolves when the guard has it. Rejects with GuardUnavailableError. */
  arm(entry: ArmEntry): Promise<void> {
    if (this.closed) return Promise.reject(new GuardUnavailableError("thaw guard is closed"));
    let command: ArmCommand;
    try {
      // Checked as the guard will check it, so a bad entry fails here, not as a silent reject.
      const { id, domain, deadline } = entry;
      const resumeIfPaused = entry.resumeIfPaused ?? false;
      const uuid = entry.uuid === undefined ? {} : { uuid: entry.uuid };
      command = decodeCommand(
        encode({ type: "arm", id, domain, deadline, resumeIfPaused, ...uuid }).trimEnd(),
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

  /** Lets go of the guard: it thaws every guest still armed (a spawned one then exits; a
   *  sidecar goes on serving). Pending calls fail. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.ready = false;
    clearTimeout(this.restartTimer);
    const error = new GuardUnavailableError("thaw guard closed");
    for (const sent of this.inFlight.splice(0)) for (const call of sent.calls) call.reject(error);
    for (const calls of this.waitingArms.values()) for (const call of calls) call.reject(error);
    this.waitingArms.clear();
    // A guard still starting is handed the live entries before it is let go; when the last
    // one was lost and none is starting, one more is started just to thaw them.
    if (this.launching) await this.launching.catch(() => {});
    else if (this.link === undefined && this.live.size > 0) await this.launch().catch(() => {});
    const link = this.link;
    if (link === undefined) return;
    link.end();
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      link.ended,
      new Promise((resolve) => (timer = setTimeout(resolve, this.options.closeTimeoutMs))),
    ]);
    clearTimeout(timer);
  }

  // ---- the guard -------------------------------------------------------------------------

  /** Runs the first start; on failure nothing is left running or scheduled. */
  private async firstStart(start: () => Promise<void>): Promise<void> {
    // Everything else the guard owns is unref'd; whoever awaits the start must not see the
    // process exit under it (an awaited arm is kept alive by its ack timer likewise).
    const keepAlive = setInterval(() => {}, 60_000);
    try {
      await start();
    } catch (err) {
      this.closed = true;
      clearTimeout(this.restartTimer);
      this.link?.kill();
      throw err;
    } finally {
      clearInterval(keepAlive);
    }
  }

  private untilReady(): Promise<void> {
    return new Promise((resolve) => this.readyWaiters.push(resolve));
  }

  private launch(): Promise<void> {
    const attempt = this.startLink().finally(() => {
      if (this.launching === attempt) this.launching = undefined;
    });
    this.launching = attempt;
    return attempt;
  }

  private async startLink(): Promise<void> {
    const link: GuardLink = this.open({
      startTimeoutMs: this.options.startTimeoutMs,
      onReply: (reply) => this.onReply(link, reply),
      onBadReply: () => {},
    });
    this.link = link;
    void link.ended.then((how) => this.onEnded(link, how));
    await link.ready;
    if (this.link !== link) return;
    this.wasReady.add(link);
    this.restartDelayMs = this.options.restartMinMs;
    // The new guard gets every live entry; arm calls that waited for it are answered by these.
    for (const command of this.live.values()) {
      if (this.closed) link.write(command);
      else this.send(command, this.waitingArms.get(command.id) ?? []);
      this.waitingArms.delete(command.id);
    }
    // Left: calls of entries no longer live (disarmed, or timed out); none is still waiting.
    for (const calls of this.waitingArms.values()) for (const call of calls) call.resolve();
    this.waitingArms.clear();
    if (this.closed) link.end();
    else this.ready = true;
    for (const resolve of this.readyWaiters.splice(0)) resolve();
  }

  private onEnded(link: GuardLink, how: string): void {
    if (this.link !== link) return;
    this.link = undefined;
    this.ready = false;
    if (this.closed) return;
    if (this.reportFailedStarts || this.wasReady.has(link))
      this.options.onGuardExit?.(link.pid, how);
    // The lost guard's entries go to the next one; a disarm it never answered holds nothing.
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

  private onReply(link: GuardLink, reply: Reply): void {
    if (this.link !== link) return;
    if (reply.type === "thawed") {
      if (this.live.get(reply.id)?.deadline === reply.deadline) this.live.delete(reply.id);
      this.options.onThawed?.(reply);
      return;
    }
    if (reply.type === "state") {
      this.options.onState?.(reply, link.pid);
      return;
    }
    // Once closed, answers to calls already failed by close() are expected and meaningless.
    if ((reply.type !== "ack" && reply.type !== "rejected") || this.closed) return;
    const sent = this.inFlight[0];
    if (sent === undefined || (reply.type === "ack" && !answers(reply, sent.command))) {
      // Answers out of order: this guard is not speaking our protocol. A new one will.
      link.kill();
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
    // A closed link means the guard is going: onEnded hands the command to the next one.
    this.link?.write(command);
  }

  /** A pending arm/disarm with its acknowledgement deadline. */
  private call(command: Command, onTimeout?: () => void): PendingCall {
    const ms = this.options.ackTimeoutMs;
    return new PendingCall(ms, (call) => {
      onTimeout?.();
      // A ready guard that does not answer is hung: replace it when that is ours to do.
      if (
        this.link?.replaceWhenHung &&
        this.ready &&
        this.inFlight.some((sent) => sent.calls.includes(call))
      )
        this.link.kill();
      return new GuardUnavailableError(
        `thaw guard did not acknowledge ${command.type} ${command.id} within ${ms} ms`,
      );
    });
  }
}

function answers(reply: Reply & { type: "ack" }, command: Command): boolean {
  return reply.op === command.type && reply.id === command.id;
}
