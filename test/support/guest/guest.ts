// One tiny guest on the shared libvirtd, from nothing to running: the cached kernel/initramfs,
// fresh ext4 qcow2 disks in a work folder of its own, a uniquely named domain, and handles to
// watch it (console, writer records, agent). Removed at the end of the run if the test did not.
//
//   const guest = await launchGuest({ label: "freeze" });
//   const bootMs = await guest.waitForAgent();
//   const records = guest.writerRecords("vda");
import { mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { onTeardown } from "../teardown.ts";
import { useLibvirtd } from "../libvirt/libvirtd.ts";
import { createDomain, destroyDomain, removeDomain, uniqueDomainName } from "../libvirt/domains.ts";
import { agentCommand } from "../libvirt/agent.ts";
import { isAlive } from "../processes.ts";
import { type GuestImage, guestImage } from "./build.ts";
import { createExt4Qcow2 } from "./disk.ts";
import {
  type AgentMode,
  type DiskSpec,
  type HookMode,
  type RbdDiskSpec,
  guestDomainXml,
} from "./domain-xml.ts";
import { type WriterRecord, readConsole, waitForConsole, writerRecords } from "./console.ts";

export interface GuestOptions {
  /** Part of the domain name, to tell guests apart in logs. */
  label?: string;
  /** See AgentMode: "none" has no channel, "off" no agent, "hang" a SIGSTOPped one. */
  agent?: AgentMode;
  /** What qemu-ga's fsfreeze hook does on freeze. */
  hook?: HookMode;
  /** How many ext4 qcow2 file disks (vda, vdb, ...); default 1. */
  fileDisks?: number;
  diskSizeMiB?: number;
  /** RBD disks holding ext4 (from createRbdGuestDisk in rbd-disk.ts), after the file disks. */
  rbdDisks?: ReadonlyArray<Omit<RbdDiskSpec, "kind" | "target">>;
  memoryMiB?: number;
  /** Namespaces the domain's vmsnap owner element names; none: the domain has no element. */
  owners?: readonly string[];
  /** RAM the guest fills with random data before "ready" (MiB; default none). */
  dirtyMiB?: number;
  /** Of that, MiB rewritten 10 times a second afterwards (default none). */
  churnMiB?: number;
  /** Folder for disks and the console log; default a fresh one under the temp folder. */
  workDir?: string;
}

export interface Guest {
  readonly name: string;
  readonly workDir: string;
  readonly consoleLog: string;
  readonly disks: readonly DiskSpec[];
  readonly xml: string;
  readonly image: GuestImage;
  /** Date.now() just before the domain was defined: the start of boot-time measurements. */
  readonly definedAt: number;
  console(): string;
  writerRecords(disk?: string): WriterRecord[];
  waitForConsole(pattern: RegExp, timeoutMs?: number): Promise<RegExpMatchArray>;
  /** Polls guest-ping until the agent answers; resolves with ms since `definedAt`. */
  waitForAgent(timeoutMs?: number): Promise<number>;
  /**
   * Waits for /init's "ready" line: match[1] is e.g. "disks=vda,vdb agent=on hook=ok",
   * match[2] the guest's uptime in seconds when it printed it.
   */
  waitForReady(timeoutMs?: number): Promise<RegExpMatchArray>;
  destroy(): Promise<void>;
  /** Destroys and undefines the domain and deletes the work folder. */
  remove(): Promise<void>;
}

const targetName = (index: number) => `vd${String.fromCharCode(97 + index)}`;

// Work folders carry the test process's pid, like domain names, so the first launch of a run can
// delete the folders of runs that died before their teardown (their domains go the same way).
const WORK_DIR_PREFIX = "vmsnap-guest-";
let reaped = false;

function reapAbandonedWorkDirs(): void {
  if (reaped) return;
  reaped = true;
  for (const name of readdirSync(tmpdir())) {
    const pid = Number(new RegExp(`^${WORK_DIR_PREFIX}(\\d+)-`).exec(name)?.[1]);
    if (pid > 0 && pid !== process.pid && !isAlive(pid)) {
      rmSync(join(tmpdir(), name), { recursive: true, force: true });
    }
  }
}

/** Builds (or reuses) the guest image, creates the disks, defines and starts the domain. */
export async function launchGuest(options: GuestOptions = {}): Promise<Guest> {
  await useLibvirtd(); // also removes the domains of dead runs, so their disks are unused
  reapAbandonedWorkDirs();
  const image = await guestImage();
  const name = uniqueDomainName(options.label ?? "guest");
  const ownDir = options.workDir === undefined;
  const workDir =
    options.workDir ?? mkdtempSync(join(tmpdir(), `${WORK_DIR_PREFIX}${process.pid}-`));
  const consoleLog = join(workDir, "console.log");

  const disks: DiskSpec[] = [];
  for (let i = 0; i < (options.fileDisks ?? 1); i++) {
    const target = targetName(i);
    const path = join(workDir, `${target}.qcow2`);
    await createExt4Qcow2(path, options.diskSizeMiB ?? 64, target);
    disks.push({ kind: "file", target, path, format: "qcow2" });
  }
  for (const rbd of options.rbdDisks ?? [])
    disks.push({ kind: "rbd", target: targetName(disks.length), ...rbd });

  const xml = guestDomainXml({
    name,
    kernel: image.kernel,
    initrd: image.initrd,
    consoleLog,
    disks,
    agent: options.agent ?? "on",
    hook: options.hook ?? "ok",
    memoryMiB: options.memoryMiB ?? 128,
    owners: options.owners,
    dirtyMiB: options.dirtyMiB,
    churnMiB: options.churnMiB,
  });

  let removed = false;
  const remove = async () => {
    if (removed) return;
    removed = true;
    await removeDomain(name);
    if (ownDir) rmSync(workDir, { recursive: true, force: true });
  };
  onTeardown(remove);

  const definedAt = Date.now();
  await createDomain(name, xml);

  return {
    name,
    workDir,
    consoleLog,
    disks,
    xml,
    image,
    definedAt,
    console: () => readConsole(consoleLog),
    writerRecords: (disk?: string) => writerRecords(readConsole(consoleLog), disk),
    waitForConsole: (pattern, timeoutMs = 60_000) => waitForConsole(consoleLog, pattern, timeoutMs),
    async waitForAgent(timeoutMs = 60_000) {
      const deadline = Date.now() + timeoutMs;
      let last: unknown;
      while (Date.now() < deadline) {
        try {
          await agentCommand(name, "guest-ping", undefined, {
            agentTimeoutSec: 2,
            timeoutMs: 10_000,
          });
          return Date.now() - definedAt;
        } catch (err) {
          last = err;
        }
        await sleep(100);
      }
      throw new Error(
        `agent of ${name} did not answer within ${timeoutMs} ms: ${String(last)}\n${readConsole(consoleLog).slice(-2000)}`,
      );
    },
    waitForReady: (timeoutMs = 60_000) =>
      waitForConsole(consoleLog, /^vmsnap-guest: ready (.*) \(uptime ([\d.]+)\)$/m, timeoutMs),
    destroy: () => destroyDomain(name),
    remove,
  };
}
