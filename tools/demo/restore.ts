// The demo's last act: the VM snapshot restored in place with a VMRestore. The guest's RAM image
// was taken while its filesystems were frozen, so it wakes up frozen; the agent thaws it at once
// and the demo prints how long after the resume, and where the guest's writer continues.
import { stringify } from "yaml";
import type { RestorePhase, VMRestore } from "../../src/api/restore-types.ts";
import { API_VERSION } from "../../src/api/types.ts";
import { guestWriterLog } from "../../test/support/e2e/writer.ts";
import { sequenceGaps } from "../../test/support/guest/index.ts";
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
  // The writer's log on each disk, read back through the guest agent: the snapshot's records,
  // then the restored writer's new ones, numbered on from the snapshot, without a gap.
  await new Promise((r) => setTimeout(r, 1_500));
  for (const disk of ["vda", "vdb"]) {
    const log = await guestWriterLog(stack.guest, disk);
    const last = log.at(-1)?.seq ?? 0;
    line(
      `  ${disk}: its log on disk runs 1..${last}, ${sequenceGaps(log).length === 0 ? "without a gap" : "WITH GAPS"}: ` +
        `the snapshot's records, then the restored writer's`,
    );
  }
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
