// Writing a benchmark's result file and running a benchmark's main: services started through
// the test harness register their clean-up with teardown.ts (there is no mocha here), so main
// runs it on success, failure and Ctrl-C alike.
import { mkdirSync, writeFileSync } from "node:fs";
import { fileURLToPath, pathToFileURL } from "node:url";
import { runTeardowns } from "../../test/support/teardown.ts";

export const RESULTS_DIR = fileURLToPath(new URL("../results/", import.meta.url));

export function resultPath(name: string): string {
  return `${RESULTS_DIR}${name}.json`;
}

export function writeResult(name: string, result: object): string {
  mkdirSync(RESULTS_DIR, { recursive: true });
  const path = resultPath(name);
  writeFileSync(path, JSON.stringify(result, null, 2) + "\n");
  return path;
}

/** True when the module at `moduleUrl` is the program being run (not imported by run.ts). */
export function isMain(moduleUrl: string): boolean {
  return moduleUrl === pathToFileURL(process.argv[1] ?? "").href;
}

/** Runs `main`, then every registered teardown; exits non-zero on failure or interruption. */
export async function runBenchmark(main: () => Promise<void>): Promise<void> {
  let interrupted = false;
  const onSignal = () => {
    if (interrupted) return;
    interrupted = true;
    console.error("interrupted: stopping what the benchmark started");
    void runTeardowns().finally(() => process.exit(130));
  };
  process.once("SIGINT", onSignal);
  process.once("SIGTERM", onSignal);
  let failed = false;
  try {
    await main();
  } catch (err) {
    failed = true;
    console.error(err instanceof Error ? (err.stack ?? err.message) : err);
  } finally {
    if (!interrupted) await runTeardowns();
  }
  // Abandoned libvirt connections or watches would keep the process alive.
  process.exit(failed ? 1 : 0);
}

export function log(message: string): void {
  console.error(`[${new Date().toISOString().slice(11, 19)}] ${message}`);
}
