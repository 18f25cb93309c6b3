// The thaw guard's wire protocol: JSON lines between the controller (client) and its guard,
// over a spawned guard's stdin/stdout or a connection to a sidecar guard's socket. Pure
// encode/decode; every decoded message is validated field by field, because the guard acts on
// it (thaws a guest) and the client resolves promises by it.
//
// controller → guard: `arm` (thaw `domain` at `deadline` unless disarmed first), `disarm`.
// guard → controller: `ready` (its libvirt connection is open), then one answer per command in
// the order received: `ack`, or `rejected` (a line it could not decode, or an arm it cannot
// keep because it is stopping, or whose domain it is still thawing); `thawed` whenever a fired
// entry's thaw ended; and `state` (guard-state.ts) after `ready` and whenever its state changed.

/** Longest line (characters) either side accepts: a command is ~150, a report a few hundred. */
export const MAX_LINE_LENGTH = 8 * 1024;
const MAX_ID = 256;
const MAX_DOMAIN = 1024;
const MAX_UUID = 64;

export interface ArmCommand {
  readonly type: "arm";
  /** The entry's key (e.g. the VMSnapshot UID); arming an armed id replaces its entry. */
  readonly id: string;
  /** libvirt domain name. */
  readonly domain: string;
  /** When to thaw, epoch milliseconds. A deadline already past fires at once. */
  readonly deadline: number;
  /** Resume the vCPUs first if the domain is paused (a VM snapshot paused them): a paused
   *  guest's agent cannot answer the thaw. */
  readonly resumeIfPaused: boolean;
  /** The domain's UUID when it was frozen: a domain of that name with another UUID (undefined
   *  and defined again while frozen) is not the guest to thaw. Absent: the name alone. */
  readonly uuid?: string;
}

export interface DisarmCommand {
  readonly type: "disarm";
  readonly id: string;
}

export type Command = ArmCommand | DisarmCommand;

export interface ReadyReply {
  readonly type: "ready";
  readonly pid: number;
}

export interface AckReply {
  readonly type: "ack";
  readonly op: Command["type"];
  readonly id: string;
}

export interface RejectedReply {
  readonly type: "rejected";
  readonly error: string;
}

/** How a fired entry ended: thawed (`thawed` filesystems, 0 when nothing was frozen); stopped
 *  (shut off: nothing left frozen); lost (no such domain here any more: it may still be frozen
 *  elsewhere, so not done); failed (a failure no retry cures). See thawGuest. */
import type { ThawOutcome } from "../hypervisor/thaw.ts";
export type { ThawOutcome };

/** Why an entry fired: its deadline passed, or the guard was left alone or told to stop. */
export type FireCause = "deadline" | "orphaned" | "terminated";

export interface ThawedReply {
  readonly type: "thawed";
  readonly id: string;
  readonly domain: string;
  /** The fired entry's deadline: tells it from a later entry armed under the same id. */
  readonly deadline: number;
  readonly cause: FireCause;
  readonly outcome: ThawOutcome;
  readonly thawed: number;
  readonly resumed: boolean;
  readonly attempts: number;
  /** The last failure's HypervisorError reason, when there was one. */
  readonly error?: string;
  /** When the thaw (or the last try) ended, epoch ms: status reports the real frozen window. */
  readonly at: number;
}

/** The guard's own state, guard-wide (every connection's entries): what the controller exports
 *  as metrics, since the guard has no metrics endpoint of its own. */
export interface StateReply {
  readonly type: "state";
  /** Entries waiting for their deadline. */
  readonly armed: number;
  /** Thaws under way: fired, not yet confirmed (or found stopped, lost, failed). */
  readonly thawing: number;
  /** Of those, the ones past their deadline: a guest that should be thawed and may not be. */
  readonly overdue: number;
  /** Failed thaw tries retried since this guard started (a counter; a new guard starts at 0). */
  readonly retries: number;
}

export type Reply = ReadyReply | AckReply | RejectedReply | ThawedReply | StateReply;

/** A line that is not a valid message of this protocol. */
export class ProtocolError extends Error {
  override readonly name = "ProtocolError";
}

/** One message as a line (JSON plus `\n`). */
export function encode(message: Command | Reply): string {
  return `${JSON.stringify(message)}\n`;
}

/** A controller → guard line, validated. Throws ProtocolError. */
export function decodeCommand(line: string): Command {
  const o = parseObject(line);
  switch (o.type) {
    case "arm":
      return {
        type: "arm",
        id: text(o, "id", MAX_ID),
        domain: text(o, "domain", MAX_DOMAIN),
        deadline: epochMs(o, "deadline"),
        resumeIfPaused: bool(o, "resumeIfPaused"),
        ...(o.uuid === undefined ? {} : { uuid: text(o, "uuid", MAX_UUID) }),
      };
    case "disarm":
      return { type: "disarm", id: text(o, "id", MAX_ID) };
    default:
      throw new ProtocolError(`unknown command type ${JSON.stringify(o.type)}`);
  }
}

/** A guard → controller line, validated. Throws ProtocolError. */
export function decodeReply(line: string): Reply {
  const o = parseObject(line);
  switch (o.type) {
    case "ready":
      return { type: "ready", pid: count(o, "pid") };
    case "ack":
      return { type: "ack", op: oneOf(o, "op", ["arm", "disarm"]), id: text(o, "id", MAX_ID) };
    case "rejected":
      return { type: "rejected", error: text(o, "error", MAX_LINE_LENGTH) };
    case "thawed": {
      const reply: ThawedReply = {
        type: "thawed",
        id: text(o, "id", MAX_ID),
        domain: text(o, "domain", MAX_DOMAIN),
        deadline: epochMs(o, "deadline"),
        cause: oneOf(o, "cause", ["deadline", "orphaned", "terminated"]),
        outcome: oneOf(o, "outcome", ["thawed", "stopped", "lost", "failed"]),
        thawed: count(o, "thawed"),
        resumed: bool(o, "resumed"),
        attempts: count(o, "attempts"),
        at: epochMs(o, "at"),
      };
      return o.error === undefined ? reply : { ...reply, error: text(o, "error", MAX_LINE_LENGTH) };
    }
    case "state":
      return {
        type: "state",
        armed: count(o, "armed"),
        thawing: count(o, "thawing"),
        overdue: count(o, "overdue"),
        retries: count(o, "retries"),
      };
    default:
      throw new ProtocolError(`unknown reply type ${JSON.stringify(o.type)}`);
  }
}

// ---- field checks ----------------------------------------------------------------------------

type Fields = Record<string, unknown>;

function parseObject(line: string): Fields {
  if (line.length > MAX_LINE_LENGTH) throw new ProtocolError(`line longer than ${MAX_LINE_LENGTH}`);
  let value: unknown;
  try {
    value = JSON.parse(line);
  } catch {
    throw new ProtocolError("not JSON");
  }
  if (typeof value !== "object" || value === null || Array.isArray(value))
    throw new ProtocolError("not a JSON object");
  return value as Fields;
}

function text(o: Fields, key: string, max: number): string {
  const v = o[key];
  if (typeof v !== "string" || v.length === 0 || v.length > max)
    throw new ProtocolError(`${key} must be a string of 1..${max} characters`);
  return v;
}

function bool(o: Fields, key: string): boolean {
  const v = o[key];
  if (typeof v !== "boolean") throw new ProtocolError(`${key} must be a boolean`);
  return v;
}

function count(o: Fields, key: string): number {
  const v = o[key];
  if (typeof v !== "number" || !Number.isSafeInteger(v) || v < 0)
    throw new ProtocolError(`${key} must be a non-negative integer`);
  return v;
}

function epochMs(o: Fields, key: string): number {
  const v = count(o, key);
  // Zero or a seconds-based timestamp would fire at once: almost certainly a caller's bug.
  if (v < 1e12) throw new ProtocolError(`${key} must be epoch milliseconds`);
  return v;
}

function oneOf<T extends string>(o: Fields, key: string, values: readonly T[]): T {
  const v = o[key];
  if (typeof v !== "string" || !(values as readonly string[]).includes(v))
    throw new ProtocolError(`${key} must be one of ${values.join(", ")}`);
  return v as T;
}
