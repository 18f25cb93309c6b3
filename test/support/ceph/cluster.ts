// A real, throw-away Ceph cluster for tests and benchmarks: one mon and one memstore OSD on
// random loopback ports, cephx on, no mgr (RBD does not need one) and no systemd. The daemons
// run in the foreground under `startDaemon`, so they are tracked and stopped by pid only.
//
// `getCephCluster()` is the shared one for a mocha run (started on first use, stopped by the
// root teardown); `startCephCluster()` gives a dedicated one, e.g. for benchmarks at Ceph's
// default `paxos_propose_interval`.
import { execFileSync } from "node:child_process";
import { randomUUID } from "node:crypto";
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { join } from "node:path";
import { freePort, startDaemon, stopLeftover, waitFor, type Daemon } from "../processes.ts";
import { runCli, type BinaryCliResult, type CliOptions } from "./cli.ts";
import { onTeardown } from "../teardown.ts";

export interface CephClusterOptions {
  /** Seconds the mon batches map changes for; Ceph's default is 1.0, tests use 0.01. */
  paxosProposeInterval?: number;
  /** How long bring-up may take before it is declared failed. */
  startTimeoutMs?: number;
}

export interface CephCluster {
  /** The cluster's folder: conf, keyrings, daemon data and logs. */
  readonly dir: string;
  readonly confPath: string;
  /** The cephx client the code under test uses (`client.<clientId>`, caps `profile rbd`). */
  readonly clientId: string;
  /** Keyring holding only `client.<clientId>`. */
  readonly keyringPath: string;
  /** An RBD-initialised pool for tests. */
  readonly pool: string;
  readonly monPid: number;
  readonly osdPid: number;
  readonly paxosProposeInterval: number;
  /** `rbd -c conf --id client --keyring k args...`; resolves with any exit code. */
  rbd(args: readonly string[], options?: CliOptions): Promise<BinaryCliResult>;
  /** `rados` as the test client. */
  rados(args: readonly string[], options?: CliOptions): Promise<BinaryCliResult>;
  /** `ceph` as client.admin (pool and auth management). */
  ceph(args: readonly string[], options?: CliOptions): Promise<BinaryCliResult>;
  /** Creates (idempotently) another RBD pool. */
  createPool(name: string): Promise<void>;
  /** Creates a cephx client with the given caps (e.g. `{ mon: "profile rbd", osd: "profile rbd-read-only" }`). */
  createClient(
    id: string,
    caps: Record<string, string>,
  ): Promise<{ clientId: string; keyringPath: string }>;
  pauseOsd(): void;
  resumeOsd(): void;
  pauseMon(): void;
  resumeMon(): void;
  stop(): Promise<void>;
}

const CLIENT_ID = "vmsnap";
const POOL = "vmsnap-test";
/** Marks a folder as ours; holds the pid and start time of the process that owns the cluster. */
const OWNER_FILE = "owner";
const DIR_PREFIX = "vc-";

let shared: Promise<CephCluster> | undefined;

/** The cluster shared by every test file of this run; started on first call. */
export function getCephCluster(): Promise<CephCluster> {
  if (!shared) {
    shared = startCephCluster();
    const started = shared;
    onTeardown(async () => {
      const cluster = await started.catch(() => undefined); // a failed start left nothing running
      await cluster?.stop();
    });
    // A failed start must not be cached: the next caller gets a fresh attempt and a real error.
    started.catch(() => {
      if (shared === started) shared = undefined;
    });
  }
  return shared;
}

/** Starts a dedicated cluster; the caller must `stop()` it. */
export async function startCephCluster(options: CephClusterOptions = {}): Promise<CephCluster> {
  ensureCephInstalled();
  await reapAbandonedClusters();
  const paxos = options.paxosProposeInterval ?? 0.01;
  // Admin-socket paths are limited to 107 bytes: a short folder directly under /tmp.
  const dir = mkdtempSync(join("/tmp", DIR_PREFIX));
  writeFileSync(join(dir, OWNER_FILE), `${process.pid} ${processStartTime(process.pid)}\n`);
  const daemons: Daemon[] = [];
  try {
    return await bringUp(dir, paxos, daemons, options.startTimeoutMs ?? 60_000);
  } catch (err) {
    await stopDaemons(daemons);
    // Tools print whole backtraces; the first lines name the failure, the logs keep the rest.
    const summary = String(err).split("\n").slice(0, 4).join("\n");
    throw new Error(`Ceph bring-up failed (logs kept in ${dir}): ${summary}`, { cause: err });
  }
}

async function bringUp(
  dir: string,
  paxos: number,
  daemons: Daemon[],
  timeoutMs: number,
): Promise<CephCluster> {
  const fsid = randomUUID();
  const [v2Port, v1Port] = [await freePort(), await freePort()];
  const monAddr = `[v2:127.0.0.1:${v2Port},v1:127.0.0.1:${v1Port}]`;
  const confPath = join(dir, "ceph.conf");
  const adminKeyring = join(dir, "keyring");
  const clientKeyring = join(dir, `client.${CLIENT_ID}.keyring`);
  writeFileSync(confPath, cephConf({ dir, fsid, monAddr, paxos, adminKeyring }));

  // Keys: mon., client.admin and osd.0 share the daemons' keyring; the test client gets its own
  // file, so code under test runs with exactly the caps a real deployment would give it.
  const authtool = (...args: string[]) => execFileSync("ceph-authtool", args, { stdio: "pipe" });
  authtool("--create-keyring", adminKeyring, "--gen-key", "-n", "mon.", "--cap", "mon", "allow *");
  authtool(
    adminKeyring,
    "--gen-key",
    "-n",
    "client.admin",
    "--cap",
    "mon",
    "allow *",
    "--cap",
    "osd",
    "allow *",
    "--cap",
    "mgr",
    "allow *",
  );
  authtool(
    adminKeyring,
    "--gen-key",
    "-n",
    "osd.0",
    "--cap",
    "mon",
    "allow profile osd",
    "--cap",
    "osd",
    "allow *",
  );
  authtool(
    "--create-keyring",
    clientKeyring,
    "--gen-key",
    "-n",
    `client.${CLIENT_ID}`,
    "--cap",
    "mon",
    "profile rbd",
    "--cap",
    "osd",
    "profile rbd",
  );
  authtool(adminKeyring, "--import-keyring", clientKeyring);

  const monmap = join(dir, "monmap");
  execFileSync("monmaptool", ["--create", "--fsid", fsid, "--addv", "a", monAddr, monmap], {
    stdio: "pipe",
  });
  execFileSync(
    "ceph-mon",
    ["-c", confPath, "--mkfs", "-i", "a", "--monmap", monmap, "--keyring", adminKeyring],
    { stdio: "pipe" },
  );
  const mon = await startDaemon("ceph-mon", "ceph-mon", ["-f", "-c", confPath, "-i", "a"], {
    runDir: dir,
  });
  daemons.push(mon);

  const asAdmin = ["-c", confPath, "--id", "admin", "--keyring", adminKeyring];
  const ceph = (args: readonly string[], options?: CliOptions) =>
    runCli("ceph", [...asAdmin, "--connect-timeout", "10", ...args], {
      timeoutMs: 30_000,
      ...options,
    });
  // The mon answers once it has formed its quorum of one.
  await waitFor(
    "ceph-mon quorum",
    async () => (await ceph(["mon", "stat"], { timeoutMs: 5_000 })).code === 0,
    timeoutMs,
    100,
  );

  const osdUuid = randomUUID();
  const created = await ceph(["osd", "new", osdUuid]);
  if (created.code !== 0 || created.stdout.trim() !== "0")
    throw new Error(`ceph osd new: ${created.stderr || created.stdout}`);
  mkdirSync(join(dir, "osd.0"));
  execFileSync("ceph-osd", ["-c", confPath, "-i", "0", "--mkfs", "--osd-uuid", osdUuid], {
    stdio: "pipe",
  });
  const osd = await startDaemon("ceph-osd", "ceph-osd", ["-f", "-c", confPath, "-i", "0"], {
    runDir: dir,
  });
  daemons.push(osd);

  const rbd = (args: readonly string[], options?: CliOptions) =>
    runCli("rbd", ["-c", confPath, "--id", CLIENT_ID, "--keyring", clientKeyring, ...args], {
      timeoutMs: 60_000,
      ...options,
    });
  const rados = (args: readonly string[], options?: CliOptions) =>
    runCli("rados", ["-c", confPath, "--id", CLIENT_ID, "--keyring", clientKeyring, ...args], {
      timeoutMs: 60_000,
      ...options,
    });

  const createPool = async (name: string) => {
    await runOk(ceph(["osd", "pool", "create", name, "8", "8", "replicated"]));
    await runOk(ceph(["osd", "pool", "application", "enable", name, "rbd"]));
  };
  await createPool(POOL);
  // Ready means RBD works end to end (mon, OSD up and the PGs active), not that `ceph -s` says so.
  await waitFor("an rbd create/snap/remove probe", () => rbdProbe(rbd), timeoutMs, 200);

  const signal = (daemon: Daemon, sig: NodeJS.Signals) => process.kill(daemon.pid, sig);
  let stopped = false;
  return {
    dir,
    confPath,
    clientId: CLIENT_ID,
    keyringPath: clientKeyring,
    pool: POOL,
    monPid: mon.pid,
    osdPid: osd.pid,
    paxosProposeInterval: paxos,
    rbd,
    rados,
    ceph,
    createPool,
    async createClient(id, caps) {
      const keyringPath = join(dir, `client.${id}.keyring`);
      const capArgs = Object.entries(caps).flat();
      const result = await runOk(ceph(["auth", "get-or-create", `client.${id}`, ...capArgs]));
      writeFileSync(keyringPath, result.stdout);
      return { clientId: id, keyringPath };
    },
    pauseOsd: () => signal(osd, "SIGSTOP"),
    resumeOsd: () => signal(osd, "SIGCONT"),
    pauseMon: () => signal(mon, "SIGSTOP"),
    resumeMon: () => signal(mon, "SIGCONT"),
    async stop() {
      if (stopped) return;
      stopped = true;
      await stopDaemons(daemons);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

function cephConf(p: {
  dir: string;
  fsid: string;
  monAddr: string;
  paxos: number;
  adminKeyring: string;
}): string {
  return `[global]
fsid = ${p.fsid}
mon_host = ${p.monAddr}
auth_cluster_required = cephx
auth_service_required = cephx
auth_client_required = cephx
public_addr = 127.0.0.1
cluster_addr = 127.0.0.1
ms_bind_ipv4 = true
ms_bind_ipv6 = false
run_dir = ${p.dir}
admin_socket = ${p.dir}/$name.$pid.asok
# One OSD: pools of size 1, placement on OSDs rather than hosts, no autoscaler (it needs a mgr).
mon_allow_pool_size_one = true
mon_allow_pool_delete = true
osd_pool_default_size = 1
osd_pool_default_min_size = 1
osd_pool_default_pg_num = 8
osd_pool_default_pgp_num = 8
osd_pool_default_pg_autoscale_mode = off
osd_crush_chooseleaf_type = 0
# The mon's store sits on a shared /tmp: never refuse to work because the disk looks full.
mon_data_avail_warn = 1
mon_data_avail_crit = 0
paxos_propose_interval = ${p.paxos}

[mon]
mon_data = ${p.dir}/mon.$id
keyring = ${p.adminKeyring}
log_file = ${p.dir}/$name.log

[osd]
osd_data = ${p.dir}/osd.$id
keyring = ${p.adminKeyring}
log_file = ${p.dir}/$name.log
osd_objectstore = memstore
memstore_device_bytes = 2147483648
osd_fast_shutdown = false
# Two shared cores: keep the OSD's thread pools small.
osd_op_num_shards = 1
osd_op_num_threads_per_shard = 2
# Tests stop the OSD (SIGSTOP) to hold a snapshot's disk step, for up to ~70 s: its own thread
# watchdogs must not take that for a hang once it runs again (a thread "timed out" makes the OSD
# report itself unhealthy; past the suicide timeout it aborts).
osd_op_thread_timeout = 600
osd_op_thread_suicide_timeout = 0
osd_recovery_thread_timeout = 600
osd_heartbeat_grace = 600
`;
}

async function rbdProbe(rbd: CephCluster["rbd"]): Promise<boolean> {
  const image = `${POOL}/probe-${process.pid}`;
  const opts = { timeoutMs: 10_000 };
  const timeouts = ["--rados-osd-op-timeout", "5", "--client-mount-timeout", "5"];
  if ((await rbd([...timeouts, "create", "--size", "1M", image], opts)).code !== 0) return false;
  const snapped =
    (await rbd([...timeouts, "snap", "create", "--no-progress", `${image}@probe`], opts)).code ===
    0;
  await rbd([...timeouts, "snap", "purge", "--no-progress", image], opts);
  await rbd([...timeouts, "rm", "--no-progress", image], opts);
  return snapped;
}

async function runOk(pending: Promise<BinaryCliResult>): Promise<BinaryCliResult> {
  const result = await pending;
  if (result.code !== 0) throw new Error(`exit ${result.code}: ${result.stderr.trim()}`);
  return result;
}

async function stopDaemons(daemons: readonly Daemon[]): Promise<void> {
  // The data lives in OSD memory and is thrown away: SIGKILL is enough, and it also ends a
  // daemon a test left SIGSTOPped. The OSD goes first so it never reconnects to a dying mon.
  for (const daemon of [...daemons].reverse()) await daemon.stop("SIGKILL", 5_000);
}

function ensureCephInstalled(): void {
  const packages = ["ceph-mon", "ceph-osd", "ceph-common"];
  const missing = packages.filter((name) => {
    try {
      return !execFileSync("dpkg-query", ["-W", "-f=${Status}", name], {
        encoding: "utf8",
      }).startsWith("install ok installed");
    } catch {
      return true;
    }
  });
  if (missing.length === 0) return;
  const env = { ...process.env, DEBIAN_FRONTEND: "noninteractive" };
  execFileSync("apt-get", ["update", "-qq"], { stdio: "inherit", env });
  execFileSync("apt-get", ["install", "-y", "-qq", "--no-install-recommends", ...missing], {
    stdio: "inherit",
    env,
  });
}

/** The kernel's start time of a pid (field 22 of /proc/pid/stat), to tell pid reuse apart. */
function processStartTime(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2).split(" ")[19];
  } catch {
    return undefined;
  }
}

/**
 * Stops the daemons of clusters whose owning process is gone (a crashed or killed run) and
 * removes their folders. Clusters of live runs — another engineer's tests — are left alone.
 */
async function reapAbandonedClusters(): Promise<void> {
  for (const entry of readdirSync("/tmp")) {
    if (!entry.startsWith(DIR_PREFIX)) continue;
    const dir = join("/tmp", entry);
    const ownerFile = join(dir, OWNER_FILE);
    if (!existsSync(ownerFile)) continue;
    const [pidText, startTime] = readFileSync(ownerFile, "utf8").trim().split(" ");
    const pid = Number(pidText);
    if (processStartTime(pid) !== undefined && processStartTime(pid) === startTime) continue;
    await stopLeftover(dir, "ceph-osd");
    await stopLeftover(dir, "ceph-mon");
    rmSync(dir, { recursive: true, force: true });
  }
}
