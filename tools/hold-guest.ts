// Starts one test guest (options from the command line) and keeps it until this process gets
// SIGINT/SIGTERM, for probing QEMU/libvirt by hand with virsh; then removes it.
//
// Usage: npx tsx tools/hold-guest.ts [--memory 512] [--dirty 256] [--churn 0]
import { parseArgs } from "node:util";
import { launchGuest } from "../test/support/guest/index.ts";
import { runBenchmark } from "../bench/lib/report.ts";

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      memory: { type: "string", default: "128" },
      dirty: { type: "string", default: "0" },
      churn: { type: "string", default: "0" },
    },
  });
  const guest = await launchGuest({
    label: "hold",
    memoryMiB: Number(values.memory),
    dirtyMiB: Number(values.dirty),
    churnMiB: Number(values.churn),
  });
  const ready = await guest.waitForReady(300_000);
  console.log(
    `name=${guest.name}\nconsole=${guest.consoleLog}\nworkdir=${guest.workDir}\nready: ${ready[0]}`,
  );
  // Kept alive by a timer until a signal; runBenchmark's handler then tears the guest down.
  setInterval(() => undefined, 60_000);
  await new Promise<void>(() => undefined);
}

await runBenchmark(main);
