// The thaw guard process: the out-of-process half of the thaw guarantee. The controller arms an
// entry before every freeze; the guard thaws each armed guest at its deadline, every guest a
// controller armed as soon as that controller is gone (SIGKILL included), and everything armed
// when it is told to stop. Its own libvirt connection means a hung or dead controller cannot
// hold it up.
//
// Two modes, one protocol (protocol.ts):
// - spawned (development, tests, a controller that is not PID 1): the controller starts it
//   detached; stdin carries commands, stdout replies, and stdin's EOF means the controller died.
// - server, `--listen PATH` (production): a sidecar container of its own, long-lived; each
//   connection to the unix socket PATH is one controller (guard-server.ts). Needed because a
//   container's PID 1 takes its whole PID namespace with it when it dies: a guard the
//   controller spawned would die with it, exactly when it is needed.
//
// Run: node dist/bundle/guard-main.js --uri qemu:///system [--listen /run/vmsnap/guard.sock]
// (dev: node --import tsx src/guard/guard-main.ts …). stderr: JSON log lines.
import { createInterface } from "node:readline";

import { Hypervisor } from "../hypervisor/index.ts";
import { fromArgv, type GuardConfig } from "./guard-args.ts";
import { GuardServer } from "./guard-server.ts";
import { GuardSession } from "./guard-session.ts";
import { jsonLog, type Log } from "./log.ts";
import { encode, type FireCause, type Reply } from "./protocol.ts";
import { thawGuest } from "../hypervisor/thaw.ts";
import { recordGuardThaw } from "../hypervisor/thaw-record.ts";

const log: Log = jsonLog((line) => process.stderr.write(line));

// A reader that died (the controller) turns writes into EPIPE 'error' events; unhandled, they
// would kill the guard exactly when it is needed.
process.stdout.on("error", () => {});
process.stderr.on("error", () => {});

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
    // One connection, one call at a time: a thaw retried against a hung libvirtd must not pile
    // calls up on a connection (lanes.ts).
    hv = await Hypervisor.open(config.uri, {
      callTimeoutMs: config.callTimeoutMs,
      maxConnections: 1,
    });
  } catch (err) {
    log("error", "cannot connect to libvirt", { uri: config.uri, error: String(err) });
    process.exit(1);
  }

  let stopping = false;
  const common = {
    // Its own connection reconnects on demand (link.ts): each try of a thaw that waits out a
    // libvirtd outage opens a new one, so the first try after libvirtd is back succeeds.
    thaw: async (
      entry: { id: string; domain: string; resumeIfPaused: boolean; uuid?: string },
      onRetry: () => void,
    ) => {
      const result = await thawGuest(hv, entry.domain, entry.resumeIfPaused, config, {
        onRetry,
        ...(entry.uuid === undefined ? {} : { uuid: entry.uuid }),
      });
      if (result.outcome === "thawed" && entry.uuid !== undefined) {
        // Its controller may be gone and never hear the reply: the guest keeps the time.
        await recordGuardThaw(hv, entry.uuid, entry.id, result.thawed, config.callTimeoutMs).catch(
          (err: unknown) =>
            log("warn", "could not record the thaw on the domain", {
              id: entry.id,
              domain: entry.domain,
              error: String(err),
            }),
        );
      }
      return result;
    },
    log,
    stopping: () => stopping,
  };
  let drain: (cause: FireCause) => Promise<void>;
  let armed: () => number;
  const stop = async (cause: FireCause, why: string, code: number): Promise<void> => {
    if (stopping) return;
    stopping = true;
    log(code === 0 ? "info" : "error", "stopping", { why, armed: armed() });
    await drain(cause);
    log("info", "exiting", { code });
    // Abandoned hung libvirt calls would keep the process alive; everything is done.
    process.exit(code);
  };

  if (config.listen !== undefined) {
    let server: GuardServer;
    try {
      server = await GuardServer.listen({ ...common, path: config.listen });
    } catch (err) {
      log("error", "cannot listen", { path: config.listen, error: String(err) });
      process.exit(1);
    }
    drain = (cause) => server.stop(cause);
    armed = () => server.armed;
    // stdin is not ours in this mode (a container's is /dev/null): its EOF means nothing.
  } else {
    const send = (reply: Reply) => {
      try {
        process.stdout.write(encode(reply));
      } catch {
        // The controller is gone: the log still records what happened.
      }
    };
    const session = new GuardSession({ ...common, send });
    drain = (cause) => session.drain(cause);
    armed = () => session.armed;
    const lines = createInterface({ input: process.stdin, crlfDelay: Infinity });
    lines.on("line", (line) => session.receive(line));
    // EOF: the controller closed us or died. Either way nobody else will thaw these guests.
    lines.on("close", () => void stop("orphaned", "stdin closed", 0));
    send({ type: "ready", pid: process.pid });
    session.sendState();
  }
  for (const signal of ["SIGTERM", "SIGINT", "SIGHUP"] as const)
    process.on(signal, () => void stop("terminated", signal, 0));
  process.on("uncaughtException", (err) => void stop("terminated", `crash: ${String(err)}`, 1));

  log("info", "ready", {
    uri: config.uri,
    pid: process.pid,
    ...(config.listen === undefined ? {} : { listen: config.listen }),
  });
}

void main();
