// The thaw guard process: the out-of-process half of the thaw guarantee. The controller spawns
// it detached (its own session: killing the controller's process group spares it) and arms an
// entry before every freeze. The guard thaws each armed guest at its deadline, and every armed
// guest at once when its stdin closes — the controller died, however (SIGKILL included) — or
// when it is told to stop. Its own libvirt connection means a hung or dead controller cannot
// hold it up.
//
// Run: node dist/src/guard/guard-main.js --uri qemu:///system   (dev: node --import tsx …ts)
// stdin: commands, stdout: replies (protocol.ts); stderr: JSON log lines.
//
// In a container, mind PID 1: when it exits the kernel kills its whole PID namespace, guard
// included. If PID 1 is the controller (or an init that exits with it), the guard races that
// kill; it must then be PID 1 itself or live in a container of its own.
import { createInterface } from "node:readline";

import { Hypervisor } from "../hypervisor/index.ts";
import { fromArgv, type GuardConfig } from "./guard-args.ts";
import { jsonLog, type Log } from "./log.ts";
import {
  decodeCommand,
  encode,
  ProtocolError,
  type ArmCommand,
  type FireCause,
  type Reply,
} from "./protocol.ts";
import { ThawScheduler } from "./scheduler.ts";
import { thawGuest } from "./thaw.ts";

const log: Log = jsonLog((line) => process.stderr.write(line));

// A reader that died (the controller) turns writes into EPIPE 'error' events; unhandled, they
// would kill the guard exactly when it is needed.
process.stdout.on("error", () => {});
process.stderr.on("error", () => {});

function send(reply: Reply): void {
  try {
    process.stdout.write(encode(reply));
  } catch {
    // The controller is gone: the log still records what happened.
  }
}

async function main(): Promise<void> {
  let config: GuardConfig;
  try {
    config = fromArgv(process.argv.slice(2));
  } catch (err) {
    log("error", "bad arguments", { error: String(err) });
    process.exit(2);
  }
  let hv: Hypervisor;
  try {
    hv = await Hypervisor.open(config.uri, { callTimeoutMs: config.callTimeoutMs });
  } catch (err) {
    log("error", "cannot connect to libvirt", { uri: config.uri, error: String(err) });
    process.exit(1);
  }

  const fire = async (entry: ArmCommand, cause: FireCause): Promise<void> => {
    const started = Date.now();
    const result = await thawGuest(hv, entry.domain, entry.resumeIfPaused, config);
    log(result.outcome === "failed" ? "error" : "info", "fired", {
      id: entry.id,
      domain: entry.domain,
      cause,
      ...result,
      // How far past the deadline the thaw began (negative when fired early on drain).
      lateMs: started - entry.deadline,
      tookMs: Date.now() - started,
    });
    send({
      type: "thawed",
      id: entry.id,
      domain: entry.domain,
      deadline: entry.deadline,
      cause,
      ...result,
    });
  };
  const scheduler = new ThawScheduler(fire);

  let stopping = false;
  const stop = async (cause: FireCause, why: string, code: number): Promise<void> => {
    if (stopping) return;
    stopping = true;
    log(code === 0 ? "info" : "error", "stopping", { why, armed: scheduler.size });
    await scheduler.drain(cause);
    log("info", "exiting", { code });
    // Abandoned hung libvirt calls would keep the process alive; everything is done.
    process.exit(code);
  };

  const lines = createInterface({ input: process.stdin, crlfDelay: Infinity });
  lines.on("line", (line) => {
    if (line.trim() === "") return;
    let command;
    try {
      command = decodeCommand(line);
    } catch (err) {
      if (!(err instanceof ProtocolError)) throw err;
      log("error", "rejected command", { error: err.message });
      send({ type: "rejected", error: err.message });
      return;
    }
    if (command.type === "arm") {
      scheduler.arm(command);
      // Arriving while stopping: fire it too, before the process exits.
      if (stopping) void scheduler.drain("terminated");
      send({ type: "ack", op: "arm", id: command.id });
      const { id, domain, deadline, resumeIfPaused } = command;
      log("info", "armed", { id, domain, deadline, resumeIfPaused, inMs: deadline - Date.now() });
    } else {
      const wasArmed = scheduler.disarm(command.id);
      send({ type: "ack", op: "disarm", id: command.id });
      log("info", "disarmed", { id: command.id, wasArmed });
    }
  });
  // EOF: the controller closed us or died. Either way nobody else will thaw these guests.
  lines.on("close", () => void stop("orphaned", "stdin closed", 0));
  for (const signal of ["SIGTERM", "SIGINT", "SIGHUP"] as const)
    process.on(signal, () => void stop("terminated", signal, 0));
  process.on("uncaughtException", (err) => void stop("terminated", `crash: ${String(err)}`, 1));

  send({ type: "ready", pid: process.pid });
  log("info", "ready", { uri: config.uri, pid: process.pid });
}

void main();
