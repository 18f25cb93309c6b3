// The agent as the benchmarks run it: src/agent.ts's production wiring and command line, plus
// one flag the shipped entry point does not have, `--bench-storage MODE`:
//   real        the production backends (the default);
//   sequential  RBD images snapshotted one after another instead of one group snapshot: the
//               baseline of bench/rbd-group-vs-sequential.ts, NOT consistent across images;
//   noop        no storage I/O at all, to measure the controller's own cost.
import { parseArgs } from "node:util";
import {
  rbdConfigOf,
  runFromCommandLine,
  storageBackends,
  type StorageWiring,
} from "../../src/agent.ts";
import { timedBackend } from "../../src/snapshot/observe.ts";
import { StorageRegistry } from "../../src/storage/registry.ts";
import { LibvirtFileBackend } from "../../src/storage/libvirt-file/index.ts";
import { RbdBackend } from "../../src/storage/rbd/index.ts";
import { NoopBackend } from "./noop-backend.ts";

export type BenchStorage = "real" | "sequential" | "noop";

const WIRING: Record<BenchStorage, StorageWiring> = {
  real: storageBackends,
  sequential: (config, hypervisor, metrics) =>
    new StorageRegistry([
      timedBackend(
        new RbdBackend({ config: rbdConfigOf(config), sequentialImageSnapshots: true }),
        metrics,
      ),
      timedBackend(new LibvirtFileBackend({ hypervisor }), metrics),
    ]),
  noop: () => new StorageRegistry([new NoopBackend("rbd"), new NoopBackend("libvirt-file")]),
};

/** Splits `--bench-storage MODE` (or `=MODE`) off `argv`; the rest goes to the agent. */
function benchStorageFrom(argv: readonly string[]): {
  storage: BenchStorage;
  rest: string[];
} {
  const { values, tokens } = parseArgs({
    args: [...argv],
    options: { "bench-storage": { type: "string" } },
    strict: false,
    allowPositionals: true,
    tokens: true,
  });
  const mode = values["bench-storage"] ?? "real";
  if (typeof mode !== "string" || !(mode in WIRING)) {
    throw new Error(
      `--bench-storage must be real, sequential or noop, not ${JSON.stringify(mode)}`,
    );
  }
  const drop = new Set<number>();
  for (const token of tokens) {
    if (token.kind !== "option" || token.name !== "bench-storage") continue;
    drop.add(token.index);
    if (!token.inlineValue) drop.add(token.index + 1);
  }
  return { storage: mode as BenchStorage, rest: argv.filter((_, i) => !drop.has(i)) };
}

const { storage, rest } = benchStorageFrom(process.argv.slice(2));
await runFromCommandLine(rest, WIRING[storage]);
