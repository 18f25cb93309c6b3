// A libvirt test driver hosted by a daemon: fake domains whose state (frozen filesystems, paused
// vCPUs) is shared by every process that connects — the controller, its thaw guard, a restarted
// controller and the test itself — which the in-process `test:///` driver cannot do (each
// process gets its own copy there).
//
// The daemon is an unprivileged *session* libvirtd run as `nobody` in a run folder of its own
// (socket, config, state), so it never meets the machine's system libvirtd. Its `test:///default`
// keeps state only while at least one client connection stays open, so the harness holds one for
// its whole life. One daemon per mocha process, started on first use, stopped at the end of the
// run; folders and daemons of crashed runs are stopped and removed by pid file.
//
//   const host = await useLibvirtTestHost();
//   const name = uniqueTestDomainName("deadline");
//   await host.defineRunningDomain(name, testDomainXml({ name, rbdDisks: 2, guestAgent: true }));
//   await host.hypervisor().fsFreeze(name);
//   expect(await host.wasFrozen(name)).to.equal(true);   // and now it is thawed
import { chownSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { writeFileSync } from "node:fs";
import { join } from "node:path";

import { Hypervisor, HypervisorError, type DomainState } from "../../../src/hypervisor/index.ts";
import { withPrivateFile } from "./domains.ts";
import { virsh } from "./virsh.ts";
import { isAlive, logTail, startDaemon, stopLeftover, waitFor, type Daemon } from "../processes.ts";
import { onTeardown } from "../teardown.ts";

/** Run folders live here, one per test process, named by its pid. Short: the socket path must
 *  fit in 107 bytes. */
export const TEST_HOST_BASE = "/run/vmsnap/libvirt-test-host";
const LIBVIRTD = "/usr/sbin/libvirtd";
const RUNUSER = "/usr/sbin/runuser";
/** The process we start (runuser as root, else libvirtd itself), by startDaemon's pid file. */
const DAEMON = "session-libvirtd";
/** libvirtd itself under runuser: recorded too, so a leftover is stopped even if runuser died. */
const INNER = "session-libvirtd-inner";

export interface LibvirtTestHost {
  /** `test+unix:///default?socket=…`: give it to Hypervisor.open, the guard, virsh -c. */
  readonly uri: string;
  readonly runDir: string;
  /** A connection shared by the tests. Do not close it; open your own if you need to. */
  hypervisor(): Hypervisor;
  /** Creates a transient, running domain from `xml` (virDomainCreateXML, through virsh). */
  defineRunningDomain(name: string, xml: string): Promise<void>;
  /** Destroys a domain (a transient one is then gone); a missing one is fine. */
  destroyDomain(name: string): Promise<void>;
  /** Whether any filesystem of `name` was frozen. A probe by thawing: afterwards none is. */
  wasFrozen(name: string): Promise<boolean>;
  /** Whether `name` is frozen, leaving it as it was. The test driver's freeze of a frozen guest
   *  freezes nothing (returns 0); a thawed one is frozen and thawed back. Test driver only. */
  isFrozen(name: string): Promise<boolean>;
  domainState(name: string): Promise<DomainState>;
  /**
   * Stops libvirtd (SIGSTOP, by its pid): every call on an open connection hangs, and a new
   * connection hangs in its handshake, until `continueLibvirtd`. The daemon is stopped, not
   * ended, because test:///default's domains live in its memory: a restarted daemon would have
   * none of them. The harness's own connections have keepalive off so they outlive the stop
   * (an empty daemon would drop test:///default's state). Test driver only.
   */
  stopLibvirtd(): void;
  /** Lets a stopped libvirtd run again (SIGCONT); a no-op when it runs. */
  continueLibvirtd(): void;
}

let shared: Promise<LibvirtTestHost> | undefined;

/** The daemon-hosted test driver of this test process, started on first use. */
export function useLibvirtTestHost(): Promise<LibvirtTestHost> {
  shared ??= startHost();
  return shared;
}

let counter = 0;

/** A domain name unique in this test process; `label` says what it is for. */
export function uniqueTestDomainName(label = "vm"): string {
  return `vmsnap-th-${process.pid}-${++counter}-${label.replace(/[^A-Za-z0-9_.-]/g, "-")}`;
}

// ---- the daemon ------------------------------------------------------------------------------

async function startHost(): Promise<LibvirtTestHost> {
  mkdirSync(TEST_HOST_BASE, { recursive: true, mode: 0o755 });
  await removeLeftovers();
  const runDir = join(TEST_HOST_BASE, String(process.pid));
  rmSync(runDir, { recursive: true, force: true });
  mkdirSync(runDir, { mode: 0o755 });
  const root = process.getuid?.() === 0;
  const nobody = root ? userIds("nobody") : undefined;
  // libvirtd as root would be a second *system* daemon fighting over /run/libvirt.
  if (nobody) chownSync(runDir, nobody.uid, nobody.gid);

  const config = join(runDir, "libvirtd.conf");
  writeFileSync(
    config,
    [
      `unix_sock_dir = "${runDir}"`,
      // Root (the tests) connects to nobody's socket: no polkit, no auth, loopback file only.
      `unix_sock_rw_perms = "0777"`,
      `auth_unix_rw = "none"`,
      "",
    ].join("\n"),
  );
  const ownPidFile = join(runDir, "libvirtd.own.pid");
  const environment = [
    `HOME=${runDir}`,
    `XDG_RUNTIME_DIR=${runDir}`,
    `XDG_CONFIG_HOME=${join(runDir, "cfg")}`,
    `XDG_CACHE_HOME=${join(runDir, "cache")}`,
  ];
  const libvirtd = [LIBVIRTD, "--config", config, "--pid-file", ownPidFile];
  const daemon = nobody
    ? await startDaemon(
        DAEMON,
        RUNUSER,
        ["-u", "nobody", "--", "env", ...environment, ...libvirtd],
        {
          runDir,
          cwd: runDir,
        },
      )
    : await startDaemon(DAEMON, LIBVIRTD, libvirtd.slice(1), {
        runDir,
        cwd: runDir,
        env: { ...process.env, ...Object.fromEntries(environment.map((e) => e.split("="))) },
      });

  const uri = `test+unix:///default?socket=${join(runDir, "libvirt-sock")}`;
  const connections: Hypervisor[] = [];
  onTeardown(async () => {
    for (const hv of connections.reverse()) await hv.close().catch(() => {});
    // libvirtd first: runuser then exits with it, instead of waiting out its own grace period.
    await stopLeftover(runDir, INNER);
    await daemon.stop();
    rmSync(runDir, { recursive: true, force: true });
  });
  // The holder: keeps test:///default's state alive for every other client (module header).
  connections.push(await connectWhenUp(uri, daemon));
  if (nobody) recordInner(runDir, ownPidFile);
  const tests = await Hypervisor.open(uri, { callTimeoutMs: 10_000, ...NO_KEEPALIVE });
  connections.push(tests);
  const libvirtdPid = Number(readFileSync(ownPidFile, "utf8").trim());
  // Registered last, so run first: a daemon left stopped by a failed test would never act on
  // the stop above.
  onTeardown(() => signal(libvirtdPid, "SIGCONT"));
  return hostApi(uri, runDir, tests, libvirtdPid);
}

/** The holder connection, once the daemon answers; fails early if it died. */
async function connectWhenUp(uri: string, daemon: Daemon): Promise<Hypervisor> {
  let connection: Hypervisor | undefined;
  await waitFor(
    `the session libvirtd (pid ${daemon.pid}) to answer on ${uri}`,
    async () => {
      if (daemon.child.exitCode !== null || daemon.child.signalCode !== null)
        throw new Error(`it exited; its log ends:\n${logTail(daemon.logFile, 15)}`);
      connection = await Hypervisor.open(uri, {
        callTimeoutMs: 10_000,
        openTimeoutMs: 2_000,
        ...NO_KEEPALIVE,
      });
      return true;
    },
    15_000,
    50,
  );
  return connection!;
}

/** Writes libvirtd's own pid in processes.ts's pid-file format. */
function recordInner(runDir: string, ownPidFile: string): void {
  const pid = existsSync(ownPidFile) ? readFileSync(ownPidFile, "utf8").trim() : "";
  if (/^\d+$/.test(pid)) writeFileSync(join(runDir, `${INNER}.pid`), `${pid}\n${LIBVIRTD}\n`);
}

/** Stops the daemons of test processes that are gone and removes their folders. */
async function removeLeftovers(): Promise<void> {
  for (const entry of readdirSync(TEST_HOST_BASE)) {
    const owner = Number(entry);
    if (!Number.isInteger(owner) || (owner !== process.pid && isAlive(owner))) continue;
    const dir = join(TEST_HOST_BASE, entry);
    await stopLeftover(dir, DAEMON);
    await stopLeftover(dir, INNER);
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Keepalive off: a connection that must outlive a stopped daemon (stopLibvirtd). */
const NO_KEEPALIVE = { keepaliveIntervalSeconds: 0 } as const;

function signal(pid: number, name: "SIGSTOP" | "SIGCONT"): void {
  if (!Number.isSafeInteger(pid) || pid <= 1) throw new Error(`no libvirtd pid (${pid})`);
  try {
    process.kill(pid, name);
  } catch (err) {
    // Gone already: nothing to stop or let run.
    if ((err as NodeJS.ErrnoException).code !== "ESRCH") throw err;
  }
}

function userIds(name: string): { uid: number; gid: number } {
  for (const line of readFileSync("/etc/passwd", "utf8").split("\n")) {
    const [user, , uid, gid] = line.split(":");
    if (user === name) return { uid: Number(uid), gid: Number(gid) };
  }
  throw new Error(`no user ${name} on this machine`);
}

// ---- what tests use --------------------------------------------------------------------------

function hostApi(
  uri: string,
  runDir: string,
  hv: Hypervisor,
  libvirtdPid: number,
): LibvirtTestHost {
  return {
    uri,
    runDir,
    hypervisor: () => hv,
    async defineRunningDomain(name, xml) {
      if (!xml.includes(`<name>${escapeXml(name)}</name>`))
        throw new Error(`the XML does not define a domain named ${name}`);
      // virsh's connection ends when it exits; the domain stays because the holder stays.
      await withPrivateFile(xml, (path) => virsh(["create", path], { uri, timeoutMs: 10_000 }));
    },
    async destroyDomain(name) {
      // virsh's "failed to get domain" carries no code to tell "missing" from other failures.
      if ((await this.domainState(name)) === "unknown") return;
      await virsh(["destroy", name], { uri, timeoutMs: 10_000 });
    },
    async wasFrozen(name) {
      return (await hv.fsThaw(name)) > 0;
    },
    async isFrozen(name) {
      if ((await hv.fsFreeze(name)) === 0) return true;
      await hv.fsThaw(name);
      return false;
    },
    stopLibvirtd() {
      signal(libvirtdPid, "SIGSTOP");
    },
    continueLibvirtd() {
      signal(libvirtdPid, "SIGCONT");
    },
    async domainState(name) {
      try {
        return (await hv.domainInfo(name)).state;
      } catch (err) {
        if (err instanceof HypervisorError && err.reason === "DomainNotFound") return "unknown";
        throw err;
      }
    },
  };
}

// ---- domain XML ------------------------------------------------------------------------------

export interface TestDomainSpec {
  readonly name: string;
  /** RBD network disks from vda on: a count (images `vms/<name>-disk<N>`) or `pool/image`s. */
  readonly rbdDisks?: number | readonly string[];
  /** The Ceph monitor the disks name; nothing connects to it on the test driver. */
  readonly monitor?: { readonly host: string; readonly port: number };
  /** A qcow2 file disk after the RBD ones (the file need not exist). */
  readonly fileDisk?: string;
  /** A guest-agent channel (org.qemu.guest_agent.0), as vmsnap's guests have. */
  readonly guestAgent?: boolean;
}

/**
 * A `type='qemu'` domain as vmsnap meets it in production: RBD disks, optionally a file disk
 * and a guest-agent channel.
 *
 * @example
 * testDomainXml({ name, rbdDisks: ["vms/a", "vms/b"], fileDisk: "/var/lib/x.qcow2", guestAgent: true })
 */
export function testDomainXml(spec: TestDomainSpec): string {
  const images =
    typeof spec.rbdDisks === "number"
      ? Array.from({ length: spec.rbdDisks }, (_, k) => `vms/${spec.name}-disk${k}`)
      : (spec.rbdDisks ?? []);
  const monitor = spec.monitor ?? { host: "127.0.0.1", port: 6789 };
  const targets = images.length + (spec.fileDisk === undefined ? 0 : 1);
  if (targets > 26) throw new Error("at most 26 disks (vda..vdz)");
  const target = (k: number) => `vd${String.fromCharCode(97 + k)}`;
  const disks = images.map(
    (image, k) => `    <disk type='network' device='disk'>
      <driver name='qemu' type='raw'/>
      <source protocol='rbd' name='${escapeXml(image)}'>
        <host name='${escapeXml(monitor.host)}' port='${monitor.port}'/>
      </source>
      <target dev='${target(k)}' bus='virtio'/>
    </disk>`,
  );
  if (spec.fileDisk !== undefined)
    disks.push(`    <disk type='file' device='disk'>
      <driver name='qemu' type='qcow2'/>
      <source file='${escapeXml(spec.fileDisk)}'/>
      <target dev='${target(images.length)}' bus='virtio'/>
    </disk>`);
  const agent = spec.guestAgent
    ? [
        `    <channel type='unix'>
      <target type='virtio' name='org.qemu.guest_agent.0'/>
    </channel>`,
      ]
    : [];
  return `<domain type='qemu'>
  <name>${escapeXml(spec.name)}</name>
  <memory unit='KiB'>131072</memory>
  <vcpu>1</vcpu>
  <os>
    <type arch='x86_64'>hvm</type>
  </os>
  <devices>
${[...disks, ...agent].join("\n")}
  </devices>
</domain>
`;
}

function escapeXml(text: string): string {
  return text.replace(
    /[<>&'"]/g,
    (c) => ({ "<": "&lt;", ">": "&gt;", "&": "&amp;", "'": "&apos;", '"': "&quot;" })[c]!,
  );
}
