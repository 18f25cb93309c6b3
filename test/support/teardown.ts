// One registry of clean-up work for the whole mocha run: harnesses that start shared services
// (control plane, Ceph, libvirtd) register their stop here, and the root hook runs them once at
// the end, so services are shared across test files yet never outlive the run.
type Teardown = () => Promise<void> | void;

const teardowns: Teardown[] = [];

/** Registers clean-up to run once, last registered first, when the test run ends. */
export function onTeardown(fn: Teardown): void {
  teardowns.push(fn);
}

/** Runs every registered clean-up; errors are reported but do not stop the others. */
export async function runTeardowns(): Promise<void> {
  while (teardowns.length > 0) {
    const fn = teardowns.pop()!;
    try {
      await fn();
    } catch (err) {
      console.error("teardown failed:", err);
    }
  }
}
