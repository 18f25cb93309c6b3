// The pause before cleaning up: the stack stays up, the watch keeps printing, and the user gets
// the exact commands to look at it (kubectl with the demo's kubeconfig, curl, virsh) and a
// manifest to take one more snapshot, until Enter (or Ctrl-C).
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { stringify } from "yaml";
import { API_VERSION, KIND } from "../../src/api/types.ts";
import { SYSTEM_URI } from "../../test/support/libvirt/libvirtd.ts";
import { block, heading, line } from "./say.ts";
import type { Session } from "./session.ts";
import { NAMESPACE, NODE_NAME, type DemoStack } from "./stack.ts";

/** Prints what to try; writes `another-snapshot.yaml` (generateName) into the demo folder. */
export function printTryIt(stack: DemoStack): void {
  const another = join(stack.dir, "another-snapshot.yaml");
  writeFileSync(
    another,
    stringify({
      apiVersion: API_VERSION,
      kind: KIND,
      metadata: { generateName: "more-", namespace: NAMESPACE },
      spec: { source: { domain: stack.guest.name, node: NODE_NAME }, memory: true },
    }),
  );
  heading("The stack is still up. In another terminal, try:");
  block(
    [
      `export KUBECONFIG=${stack.cp.kubeconfigPath} PATH=${stack.cp.binDir}:$PATH`,
      `kubectl get vmsnapshots -n ${NAMESPACE}`,
      `kubectl describe vmsnapshot vm-snapshot -n ${NAMESPACE}`,
      `kubectl get events -n ${NAMESPACE} --sort-by=.metadata.creationTimestamp`,
      `kubectl create -f ${another}   # one more; its phases appear here`,
      `curl -s http://127.0.0.1:${stack.controller.metricsPort}/metrics | grep ^vmsnap_`,
      `virsh -c ${SYSTEM_URI} snapshot-list ${stack.guest.name}`,
      `tail -f ${stack.controller.logFile}   # the controller's JSON log`,
    ].join("\n"),
  );
  line();
  line("Press Enter to clean up and exit (or Ctrl-C).");
}

/** Resolves on Enter; Ctrl-C interrupts it through the session like any other wait. */
export async function waitForEnter(session: Session): Promise<void> {
  // terminal: false keeps the tty in cooked mode, so Ctrl-C stays a real SIGINT for the session.
  const rl = createInterface({ input: process.stdin, terminal: false });
  try {
    // End of input (stdin closed) counts as Enter: nobody is left to press it.
    const entered = new Promise<void>((resolve) => {
      rl.once("line", () => resolve());
      rl.once("close", () => resolve());
    });
    await session.interruptible(entered);
  } finally {
    rl.close();
  }
}
