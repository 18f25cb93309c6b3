#!/usr/bin/env node
// `make demo`: one command from a fresh machine to two real snapshots and back to nothing. It
// brings up a local control plane, Ceph, libvirtd and a tiny QEMU guest (one qcow2 disk, one RBD
// disk), starts the vmsnap controller, applies a disk snapshot and a VM snapshot (memory: true),
// prints each phase as the API server reports it, then the final status and the live metrics,
// and removes everything it started — on success, on failure, and on Ctrl-C (tools/demo/session.ts).
// Interactive by default: it waits for Enter before cleaning up, so the stack can be explored
// with kubectl; `--yes`, VMSNAP_DEMO_NONINTERACTIVE=1 or a non-terminal stdin skip the wait.
// It runs detached from the terminal's signals (tools/demo/detach.ts), so a Ctrl-C reaches it
// once and never kills the kubectl or virsh it is running.
import { constants } from "node:os";
import { stringify } from "yaml";
import type { VMSnapshot, VMSnapshotSpec } from "../src/api/types.ts";
import { API_VERSION, KIND } from "../src/api/types.ts";
import { runTeardowns } from "../test/support/teardown.ts";
import { isDetached, runDetached } from "./demo/detach.ts";
import { printTryIt, waitForEnter } from "./demo/interactive.ts";
import { DEMO_USAGE, parseDemoOptions, UsageError, type DemoOptions } from "./demo/options.ts";
import { PhaseWatch } from "./demo/phases.ts";
import { printFinalStatus, printMetrics } from "./demo/report.ts";
import { restoreVmSnapshot } from "./demo/restore.ts";
import { block, elapsed, event, heading, line, seconds } from "./demo/say.ts";
import { CLEANUP_ORDER, Interrupted, Session } from "./demo/session.ts";
import { bringUp, NAMESPACE, NODE_NAME, type DemoStack } from "./demo/stack.ts";
import { artefactsLeft, childrenStillRunning } from "./demo/verify.ts";

/** Far above the few seconds a snapshot takes here, even on a loaded machine. */
const SNAPSHOT_TIMEOUT_MS = 120_000;

const SNAPSHOTS: ReadonlyArray<{ name: string; title: string; spec: Partial<VMSnapshotSpec> }> = [
  { name: "disk-snapshot", title: "A disk snapshot (memory: false)", spec: {} },
  { name: "vm-snapshot", title: "A VM snapshot (memory: true)", spec: { memory: true } },
];

async function demo(options: DemoOptions, session: Session): Promise<void> {
  const stack = await bringUp(session);
  const watch = new PhaseWatch(stack.cp.kubeConfig(), NAMESPACE);
  await watch.start();
  session.onCleanup("stopped watching", CLEANUP_ORDER.watch, async () => watch.stop());
  const applied: string[] = [];
  // Deleted while the controller still runs, so its finalizer removes what they made on disk.
  session.onCleanup("deleted the VMSnapshots", CLEANUP_ORDER.snapshots, () =>
    deleteSnapshots(stack),
  );

  try {
    for (const { name, title, spec } of SNAPSHOTS) {
      session.check();
      heading(`${title}: kubectl apply -f -`);
      const manifest = {
        apiVersion: API_VERSION,
        kind: KIND,
        metadata: { name, namespace: NAMESPACE },
        spec: { source: { domain: stack.guest.name, node: NODE_NAME }, ...spec },
      };
      block(stringify(manifest));
      watch.applying(name);
      const result = await stack.cp.kubectl(["apply", "-f", "-"], JSON.stringify(manifest));
      if (result.code !== 0) throw new Error(`kubectl apply ${name}: ${result.stderr}`);
      applied.push(name);
      event(`${name.padEnd(16)} ${result.stdout.trim()}`);
      const done = await session.interruptible(watch.final(name, SNAPSHOT_TIMEOUT_MS));
      if (done.status?.phase !== "Succeeded") {
        throw new Error(
          `${name} ended ${done.status?.phase}: ${JSON.stringify(done.status?.error)}`,
        );
      }
    }
  } catch (err) {
    if (!(err instanceof Interrupted)) {
      heading(`the controller's log ends (${stack.controller.logFile}):`);
      block(stack.controller.log().trimEnd().split("\n").slice(-15).join("\n"));
    }
    throw err;
  }

  await printFinalStatus(stack.cp, NAMESPACE, applied);
  session.check();
  await restoreVmSnapshot(stack, session, "vm-snapshot");
  await printMetrics(stack.controller.metricsPort);
  if (options.interactive) {
    printTryIt(stack);
    await waitForEnter(session);
  } else {
    line();
    line(`Not waiting for Enter (${options.why}).`);
  }
}

/**
 * Deletes every VMSnapshot in the namespace (also those the user created meanwhile), newest
 * first, one at a time as a user would: each file snapshot goes before the one it sits on. Then
 * looks at what is left.
 */
async function deleteSnapshots(stack: DemoStack): Promise<string> {
  const listed = await stack.cp.kubectl(["get", "vmsnapshots", "-n", NAMESPACE, "-o", "json"]);
  if (listed.code !== 0) throw new Error(`kubectl get vmsnapshots: ${listed.stderr.trim()}`);
  const started = (s: VMSnapshot) =>
    Date.parse(s.status?.startTime ?? s.metadata.creationTimestamp?.toString() ?? "") || 0;
  const snapshots = (JSON.parse(listed.stdout) as { items: VMSnapshot[] }).items.sort(
    (a, b) => started(b) - started(a),
  );
  for (const { metadata } of snapshots) {
    const deleted = await stack.cp.kubectl([
      "delete",
      "vmsnapshot",
      metadata.name!,
      "-n",
      NAMESPACE,
      "--ignore-not-found",
      "--timeout=60s",
    ]);
    if (deleted.code !== 0) {
      throw new Error(`kubectl delete ${metadata.name}: ${deleted.stderr.trim()}`);
    }
  }
  const left = await artefactsLeft(stack);
  if (left.length > 0) return `left behind: ${left.join("; ")}`;
  return `${snapshots.length}; the finalizer removed each one's Ceph and libvirt snapshots and memory image`;
}

async function main(): Promise<number> {
  let options: DemoOptions | "help";
  try {
    options = parseDemoOptions(process.argv.slice(2), process.env, process.stdin.isTTY === true);
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    process.stderr.write(`demo: ${err.message}\n`);
    return 2;
  }
  if (options === "help") {
    line(DEMO_USAGE);
    return 0;
  }
  if (process.getuid?.() !== 0) {
    process.stderr.write("demo: run as root: it starts libvirtd and QEMU guests\n");
    return 2;
  }

  const session = new Session();
  // The harnesses' own teardowns: the libvirtd lease, this run's libvirt secrets, and anything a
  // step created before an interruption let it be registered here.
  session.onCleanup("released libvirtd and this run's secrets", CLEANUP_ORDER.harnesses, () =>
    runTeardowns(),
  );
  heading(
    `vmsnap demo (${options.interactive ? "interactive" : `non-interactive: ${options.why}`})`,
  );
  let code = 0;
  try {
    await demo(options, session);
  } catch (err) {
    // 128 + the signal's number, as a shell reports a process the signal ended.
    code = err instanceof Interrupted ? 128 + (constants.signals[err.signalName] ?? 0) : 1;
    if (code === 1) {
      line();
      line(
        `*** the demo failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`,
      );
    }
  }
  heading("Cleaning up");
  await session.cleanup();
  const running = childrenStillRunning();
  line();
  if (running.shared.length > 0)
    block(`kept, shared with other runs:\n${running.shared.join("\n")}`, "  ");
  if (running.unexpected.length > 0)
    block(`still running:\n${running.unexpected.join("\n")}`, "  ");
  const clean = running.unexpected.length === 0;
  const others = running.shared.length > 0 ? " else" : "";
  line(
    `${code === 0 ? "Done" : "Stopped"} after ${seconds(elapsed())}` +
      (clean ? `; nothing${others} the demo started is still running.` : "."),
  );
  if (!clean && code === 0) code = 1;
  return code;
}

// Open watches and sockets would keep the process alive after the clean-up; exit explicitly.
process.exit(
  isDetached() ? await main() : await runDetached(import.meta.filename, process.argv.slice(2)),
);
