// Benchmark: what one freeze+thaw pair costs through the adapter (Hypervisor → addon → pool
// thread → libvirt → back through the thread-safe function), on libvirt's in-process test
// driver, so it measures vmsnap's own overhead and not a guest's (a real guest adds ~100 ms,
// docs/libvirt-facts.md). The raw addon is measured alongside to show what the TypeScript layer
// adds.
//
// Usage: npx tsx bench/freeze-thaw.ts [--pairs 1000] [--warmup 1000]
// Prints median and p99 and writes bench/results/freeze-thaw.json.
import { mkdirSync, writeFileSync } from "node:fs";
import { cpus, loadavg } from "node:os";
import { dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";

import { Hypervisor } from "../src/hypervisor/connection.ts";
import { loadNative } from "../src/hypervisor/native.ts";
import { RUNNING, TEST_URI } from "../test/integration/hypervisor/test-host.ts";

const RESULT_FILE = fileURLToPath(new URL("./results/freeze-thaw.json", import.meta.url));

interface Stats {
  readonly medianUs: number;
  readonly p99Us: number;
  readonly meanUs: number;
  readonly minUs: number;
  readonly maxUs: number;
}

function stats(samplesUs: number[]): Stats {
  const sorted = [...samplesUs].sort((a, b) => a - b);
  const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)]!;
  const round = (v: number) => Math.round(v * 10) / 10;
  return {
    medianUs: round(at(0.5)),
    p99Us: round(at(0.99)),
    meanUs: round(sorted.reduce((a, b) => a + b, 0) / sorted.length),
    minUs: round(sorted[0]!),
    maxUs: round(sorted.at(-1)!),
  };
}

/** Runs `pair` warmup + n times and returns each measured pair's duration in µs. */
async function measure(pair: () => Promise<void>, n: number, warmup: number): Promise<number[]> {
  for (let i = 0; i < warmup; i++) await pair();
  const samples: number[] = [];
  for (let i = 0; i < n; i++) {
    const start = process.hrtime.bigint();
    await pair();
    samples.push(Number(process.hrtime.bigint() - start) / 1e3);
  }
  return samples;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      pairs: { type: "string", default: "1000" },
      warmup: { type: "string", default: "1000" },
    },
  });
  const pairs = Number(values.pairs);
  const warmup = Number(values.warmup);

  const hv = await Hypervisor.open(TEST_URI);
  const adapter = await measure(
    async () => {
      // Checked, so a silently failing call can't pass for a fast one.
      if ((await hv.fsFreeze(RUNNING)) !== 2 || (await hv.fsThaw(RUNNING)) !== 2)
        throw new Error("freeze/thaw count");
    },
    pairs,
    warmup,
  );
  await hv.close();

  const native = await loadNative().open(TEST_URI, 5, 3, () => {});
  const addon = await measure(
    async () => {
      if ((await native.fsFreeze(RUNNING, [])) !== 2 || (await native.fsThaw(RUNNING, [])) !== 2) {
        throw new Error("freeze/thaw count");
      }
    },
    pairs,
    warmup,
  );
  await native.close();

  const result = {
    benchmark: "freeze-thaw",
    date: new Date().toISOString(),
    machine: {
      cpus: cpus().length,
      node: process.version,
      loadavg1m: Math.round(loadavg()[0]! * 100) / 100,
    },
    driver: "libvirt test driver (in-process), custom host test/fixtures/libvirt/test-node.xml",
    pairs,
    warmup,
    adapter: stats(adapter),
    addonOnly: stats(addon),
    note: "one pair = fsFreeze + fsThaw awaited in sequence; adapter = Hypervisor (deadline, classification), addonOnly = the raw N-API calls",
  };
  mkdirSync(dirname(RESULT_FILE), { recursive: true });
  writeFileSync(RESULT_FILE, JSON.stringify(result, null, 2) + "\n");
  console.log(`freeze+thaw pairs on the test driver (${pairs} pairs after ${warmup} warm-up)`);
  console.log(`  adapter   median ${result.adapter.medianUs} µs   p99 ${result.adapter.p99Us} µs`);
  console.log(
    `  addon     median ${result.addonOnly.medianUs} µs   p99 ${result.addonOnly.p99Us} µs`,
  );
  console.log(
    `  (1-minute load average ${result.machine.loadavg1m} on ${result.machine.cpus} CPUs)`,
  );
  console.log(`wrote ${RESULT_FILE}`);
}

await main();
