// The demo's last act: the VM snapshot restored in place with a VMRestore. The guest's RAM image
// was taken while its filesystems were frozen, so it wakes up frozen; the agent thaws it at once
// and the demo prints how long after the resume, and where the guest's writer continues.
import { stringify } from "yaml";
import type { RestorePhase, VMRestore } from "../../src/api/restore-types.ts";
import { API_VERSION } from "../../src/api/types.ts";
import { lastSeq } from "../../test/support/e2e/writer.ts";
import { block, event, heading, line } from "./say.ts";
import type { Session } from "./session.ts";
import { NAMESPACE, type DemoStack } from "./stack.ts";

const RESTORE_TIMEOUT_MS = 120_000;

export async function restoreVmSnapshot(
  stack: DemoStack,
  session: Session,
  snapshotName: string,
): Promise<void> {
  const name = `${snapshotName}-back`;
  heading(`Restoring ${snapshotName} in place: kubectl apply -f -`);
  const manifest = {
    apiVersion: API_VERSION,
    kind: "VMRestore",
    metadata: { name, namespace: NAMESPACE },
    spec: { snapshotName, target: { inPlace: {} }, stopRunningTarget: true },
  };
  block(stringify(manifest));
  const before = Object.fromEntries(["vda", "vdb"].map((d) => [d, lastSeq(stack.guest, d)]));
  const applied = await stack.cp.kubectl(["apply", "-f", "-"], JSON.stringify(manifest));
  if (applied.code !== 0) throw new Error(`kubectl apply ${name}: ${applied.stderr}`);
  event(`${name.padEnd(16)} ${applied.stdout.trim()}`);

  const done = await session.interruptible(followPhases(stack, name));
  if (done.status?.phase !== "Succeeded") {
    throw new Error(`${name} ended ${done.status?.phase}: ${JSON.stringify(done.status?.error)}`);
  }
  const st = done.status;
  line();
  line(
    `  the guest woke up with ${st.thawedFilesystems} filesystem(s) frozen; thawed ` +
      `${st.resumeToThawMs} ms after its vCPUs resumed (${st.consistency})`,
  );
  for (const disk of ["vda", "vdb"]) {
    // The restored RAM's writer goes on from the snapshot's record, below what it had reached.
    const resumedAt = await continuedBelow(stack, disk, before[disk]!);
    line(
      resumedAt === undefined
        ? `  ${disk}: the writer had reached seq ${before[disk]}; no new record yet`
        : `  ${disk}: the writer had reached seq ${before[disk]}; after the restore it writes seq ${resumedAt}, on from the snapshot`,
    );
  }
}

/** The first record the restored guest writes on `disk` (a seq below `reached`), if any soon. */
async function continuedBelow(
  stack: DemoStack,
  disk: string,
  reached: number,
): Promise<number | undefined> {
  for (let i = 0; i < 100; i++) {
    const seq = lastSeq(stack.guest, disk);
    if (seq < reached) return seq;
    await new Promise((r) => setTimeout(r, 100));
  }
  return undefined;
}

/** Prints each phase as the API server reports it, until the restore is final. */
async function followPhases(stack: DemoStack, name: string): Promise<VMRestore> {
  const deadline = Date.now() + RESTORE_TIMEOUT_MS;
  let seen: RestorePhase | undefined;
  for (;;) {
    const got = await stack.cp.kubectl(["get", "vmrestore", name, "-n", NAMESPACE, "-o", "json"]);
    if (got.code === 0) {
      const restore = JSON.parse(got.stdout) as VMRestore;
      const phase = restore.status?.phase;
      if (phase && phase !== seen) {
        seen = phase;
        event(`${name.padEnd(16)} ${phase}`);
      }
      if (phase === "Succeeded" || phase === "Failed") return restore;
    }
    if (Date.now() > deadline)
      throw new Error(`${name} did not finish within ${RESTORE_TIMEOUT_MS} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
