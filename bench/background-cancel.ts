// Measurement, not a test: what abandoning a QEMU background snapshot does to the guest on this
// machine's QEMU 7.2. Each round boots a fresh guest (128 MiB, RAM half random, a disk writer),
// prepares and arms a background snapshot, then abandons it — `--raw` with QMP migrate_cancel,
// otherwise with cancelBackgroundSnapshot (which lets the write finish) — and asks the monitor
// and the guest's writer for 5 s whether they are still alive.
// Measured 2026-12-03: migrate_cancel 6 of 6 guests hung (4 monitors silent for 20 s, 2 guests
// stalled with their monitor answering); cancelBackgroundSnapshot 0 of 6, 450–472 ms each.
//
// Usage: npx tsx bench/background-cancel.ts [rounds] [raw]
import { Hypervisor } from "../src/hypervisor/connection.ts";
import {
  armBackgroundSnapshot,
  cancelBackgroundSnapshot,
  prepareBackgroundSnapshot,
} from "../src/hypervisor/background-snapshot.ts";
import { launchGuest, guestImage } from "../test/support/guest/index.ts";
import { SYSTEM_URI, useLibvirtd } from "../test/support/libvirt/libvirtd.ts";
import { runTeardowns } from "../test/support/teardown.ts";
import { mkdtempSync } from "node:fs";
import { join } from "node:path";
import { tmpdir } from "node:os";
import { setTimeout as sleep } from "node:timers/promises";

await useLibvirtd();
await guestImage();
const hv = await Hypervisor.open(SYSTEM_URI, { callTimeoutMs: 20_000 });
const work = mkdtempSync(join(tmpdir(), "probe-"));
const rounds = Number(process.argv[2] ?? 6);
let hung = 0;
for (let i = 0; i < rounds; i++) {
  const guest = await launchGuest({
    label: `probe${i}`,
    memoryMiB: 128,
    dirtyMiB: 48,
    churnMiB: 8,
  });
  await guest.waitForReady(180_000);
  const file = join(work, `p${i}.img`);
  await prepareBackgroundSnapshot(hv, { domain: guest.name, file, timeoutMs: 30_000 });
  await hv.suspend(guest.name);
  await armBackgroundSnapshot(hv, { domain: guest.name, file, timeoutMs: 30_000 });
  if (process.argv[3] === "raw")
    await hv.qmp(guest.name, "migrate_cancel", undefined, { timeoutMs: 20_000 });
  else {
    const t0 = Date.now();
    await cancelBackgroundSnapshot(hv, guest.name, file, { timeoutMs: 60_000 });
    console.log(`cancel took ${Date.now() - t0} ms`);
  }
  let ok = true;
  const seq = guest.writerRecords("vda").at(-1)?.seq ?? 0;
  try {
    for (let k = 0; k < 20; k++) {
      await hv.qmp(guest.name, "query-migrate", undefined, { timeoutMs: 20_000 });
      await sleep(250);
    }
    const after = guest.writerRecords("vda").at(-1)?.seq ?? 0;
    console.log(`round ${i}: monitor answers; writer ${seq} -> ${after}`);
    if (after <= seq) ok = false;
  } catch (err) {
    ok = false;
    console.log(`round ${i}: ${String(err)}`);
  }
  if (!ok) hung++;
  await guest.remove().catch(() => undefined);
}
console.log(`hung or stalled: ${hung}/${rounds}`);
await hv.close();
await runTeardowns();
process.exit(0);
