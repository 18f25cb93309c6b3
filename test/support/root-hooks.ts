// Mocha global fixtures: shared services are started lazily by the tests that need them and
// stopped here once, after the last test file.
import { runTeardowns } from "./teardown.ts";

export async function mochaGlobalTeardown(): Promise<void> {
  await runTeardowns();
}
