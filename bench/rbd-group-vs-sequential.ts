// Benchmark: how long one consistent snapshot of a domain's N RBD disks takes as ONE group
// snapshot versus N image snapshots one after another (the baseline, which is also not
// consistent). Each mon map change costs about one `paxos_propose_interval`, so the gap grows
// with N and with the interval: we run at the tests' 0.01 s and at Ceph's default 1.0 s.
//
// Usage: npx tsx bench/rbd-group-vs-sequential.ts [--paxos 0.01,1.0] [--repeat 10] [--slow-repeat 3]
// --slow-repeat applies at intervals ≥ 0.5 s, where one round of 8 images takes ~10 s.
// Prints a table and writes bench/results/rbd-group-vs-sequential.json.
import { randomUUID } from "node:crypto";
import { mkdirSync, writeFileSync } from "node:fs";
import { cpus, loadavg } from "node:os";
import { fileURLToPath, pathToFileURL } from "node:url";
import { parseArgs } from "node:util";
import { RbdBackend } from "../src/storage/rbd/backend.ts";
import { createGroupSnapshot } from "../src/storage/rbd/group-snapshots.ts";
import { createImageSnapshot } from "../src/storage/rbd/image-snapshots.ts";
import { ensureGroup, syncGroupMembers } from "../src/storage/rbd/groups.ts";
import { groupNameForDomainUUID } from "../src/storage/rbd/names.ts";
import { createRbdRunner } from "../src/storage/rbd/runner.ts";
import { startCephCluster } from "../test/support/ceph/cluster.ts";
import { createImage, rbdConfigFor, rbdDisk } from "../test/support/ceph/fixtures.ts";

const IMAGE_COUNTS = [1, 2, 4, 8] as const;
const RESULT_FILE = fileURLToPath(
  new URL("./results/rbd-group-vs-sequential.json", import.meta.url),
);

export interface Row {
  readonly images: number;
  /** One `rbd group snap create` of a group holding the N images. */
  readonly groupMs: number;
  /** N `rbd snap create`, one after another. */
  readonly sequentialMs: number;
  /** RbdBackend.create as the controller calls it (membership check + group snapshot; one image: image snapshot). */
  readonly backendCreateMs: number;
  readonly samples: { group: number[]; sequential: number[]; backendCreate: number[] };
}

export interface Run {
  readonly paxosProposeInterval: number;
  readonly repeat: number;
  readonly rows: Row[];
}

const median = (values: number[]) => {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
};

async function timed(fn: () => Promise<unknown>): Promise<number> {
  const start = process.hrtime.bigint();
  await fn();
  return Number(process.hrtime.bigint() - start) / 1e6;
}

/** One dedicated cluster at the given interval; snapshots are never removed (the cluster is thrown away). */
export async function benchAtInterval(paxosProposeInterval: number, repeat: number): Promise<Run> {
  const cluster = await startCephCluster({ paxosProposeInterval });
  try {
    const config = rbdConfigFor(cluster, { opTimeoutSeconds: 30 });
    const runner = createRbdRunner(config);
    const backend = new RbdBackend({ config, runner });
    const rows: Row[] = [];
    for (const n of IMAGE_COUNTS) {
      const images = Array.from({ length: n }, (_, i) => `bench-${n}-${i}`);
      for (const image of images) await createImage(cluster, `${cluster.pool}/${image}`, "4M");
      const domain = `bench-${n}`;
      const domainUUID = randomUUID();
      const disks = images.map((image, i) =>
        rbdDisk(`vd${String.fromCharCode(97 + i)}`, cluster.pool, image),
      );
      // The group and its members are set up outside the timed part, as the controller can do
      // (RbdBackend.prepare) before it freezes the guest. It is the domain's own group, so the
      // backend's creates below use it too; with one image it exists only for the group column.
      const group = { pool: cluster.pool, group: groupNameForDomainUUID(domainUUID) };
      await ensureGroup(runner, group);
      await syncGroupMembers(
        runner,
        group,
        images.map((image) => ({ pool: cluster.pool, image })),
      );

      const samples = {
        group: [] as number[],
        sequential: [] as number[],
        backendCreate: [] as number[],
      };
      for (let r = 0; r < repeat; r++) {
        samples.group.push(await timed(() => createGroupSnapshot(runner, group, `g${r}`)));
        samples.sequential.push(
          await timed(async () => {
            for (const image of images)
              await createImageSnapshot(runner, { pool: cluster.pool, image }, `s${r}`);
          }),
        );
        samples.backendCreate.push(
          await timed(() => backend.create({ domain, domainUUID, name: `b${r}`, disks })),
        );
      }
      const row: Row = {
        images: n,
        groupMs: round(median(samples.group)),
        sequentialMs: round(median(samples.sequential)),
        backendCreateMs: round(median(samples.backendCreate)),
        samples: {
          group: samples.group.map(round),
          sequential: samples.sequential.map(round),
          backendCreate: samples.backendCreate.map(round),
        },
      };
      rows.push(row);
      console.error(`  paxos ${paxosProposeInterval}: ${n} image(s) done`);
    }
    return { paxosProposeInterval, repeat, rows };
  } finally {
    await cluster.stop();
  }
}

const round = (ms: number) => Math.round(ms * 10) / 10;

export function formatTable(runs: readonly Run[]): string {
  const lines = [
    "| paxos_propose_interval | images | group snapshot (ms) | sequential image snapshots (ms) | sequential / group | backend create (ms) |",
    "|---:|---:|---:|---:|---:|---:|",
  ];
  for (const run of runs) {
    for (const row of run.rows) {
      const ratio = (row.sequentialMs / row.groupMs).toFixed(1);
      lines.push(
        `| ${run.paxosProposeInterval} | ${row.images} | ${row.groupMs} | ${row.sequentialMs} | ${ratio}× | ${row.backendCreateMs} |`,
      );
    }
  }
  return lines.join("\n");
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      paxos: { type: "string", default: "0.01,1.0" },
      repeat: { type: "string", default: "10" },
      "slow-repeat": { type: "string", default: "3" },
    },
  });
  const intervals = values.paxos.split(",").map(Number);
  const repeat = Number(values.repeat);
  const runs: Run[] = [];
  // Other work on a shared machine skews the short (0.01 s) timings: record how busy it was.
  const loadBefore = loadavg()[0];
  const slowRepeat = Number(values["slow-repeat"]);
  for (const interval of intervals) {
    runs.push(await benchAtInterval(interval, interval >= 0.5 ? slowRepeat : repeat));
  }
  const table = formatTable(runs);
  console.log(
    `RBD: one group snapshot vs sequential image snapshots (median of ${runs.map((r) => `${r.repeat} at ${r.paxosProposeInterval}`).join(", ")}; rbd CLI incl. process start)\n`,
  );
  console.log(table);
  mkdirSync(new URL("./results/", import.meta.url), { recursive: true });
  const result = {
    benchmark: "rbd-group-vs-sequential",
    date: new Date().toISOString(),
    machine: {
      cpus: cpus().length,
      node: process.version,
      loadAverage1m: { before: loadBefore, after: loadavg()[0] },
    },
    cluster: "1 mon + 1 memstore OSD on loopback, cephx, Ceph 16.2",
    note: "group = one `rbd group snap create` (group prepared beforehand); sequential = N `rbd snap create`; backend create = RbdBackend.create (membership check + group snapshot, or an image snapshot for one image)",
    runs,
    table,
  };
  writeFileSync(RESULT_FILE, JSON.stringify(result, null, 2) + "\n");
  console.log(`\nwritten to ${RESULT_FILE}`);
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) {
  await main();
}
