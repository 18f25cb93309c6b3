// Checks behind the demo's closing claims, so it never says "removed" or "nothing left running"
// without having looked: what the VMSnapshots' deletion left in Ceph, in libvirt and in the
// memory folder, and which processes this demo started are still alive after the clean-up.
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { LIBVIRTD_RUN_DIR, listDomains, virsh } from "../../test/support/libvirt/libvirtd.ts";
import { otherLeaseHolders } from "../../test/support/libvirt/lock.ts";
import type { DemoStack } from "./stack.ts";

/** Snapshot artefacts of the demo's guest that still exist, described one per entry. */
export async function artefactsLeft(stack: DemoStack): Promise<string[]> {
  const left: string[] = [];
  for (const disk of stack.guest.disks) {
    if (disk.kind !== "rbd") continue;
    const spec = `${disk.pool}/${disk.image}`;
    const listed = await stack.ceph.rbd(["snap", "ls", "--all", spec, "--format", "json"]);
    if (listed.code !== 0) throw new Error(`rbd snap ls ${spec}: ${listed.stderr}`);
    for (const s of JSON.parse(listed.stdout || "[]") as Array<{ name: string }>) {
      left.push(`Ceph snapshot ${spec}@${s.name}`);
    }
  }
  const libvirt = await virsh(["snapshot-list", stack.guest.name, "--name"]);
  for (const name of libvirt.split("\n").filter((l) => l.trim() !== "")) {
    left.push(`libvirt snapshot ${name.trim()}`);
  }
  const memoryDir = join(stack.dir, "memory");
  for (const file of existsSync(memoryDir) ? readdirSync(memoryDir) : []) {
    left.push(`memory image ${join(memoryDir, file)}`);
  }
  return left;
}

export interface StillRunning {
  /** Live children of this demo, described; every daemon it started is one. */
  readonly unexpected: string[];
  /** The machine's shared libvirtd, when this demo started it and other runs still use it. */
  readonly shared: string[];
}

/** Which processes this demo started are still alive (ppid is this process: they are detached,
 *  not re-parented, while the demo lives). */
export function childrenStillRunning(): StillRunning {
  const result: StillRunning = { unexpected: [], shared: [] };
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    let stat: string;
    let cmdline: string;
    try {
      stat = readFileSync(`/proc/${entry}/stat`, "utf8");
      cmdline = readFileSync(`/proc/${entry}/cmdline`, "utf8").split("\0").join(" ").trim();
    } catch {
      continue; // exited while we looked
    }
    // Fields after "(comm)": state, ppid, ...
    const [state, ppid] = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    if (Number(ppid) !== process.pid || state === "Z") continue;
    // tsx's esbuild service is part of this process's runtime, not something the demo started.
    if (/\besbuild --service\b/.test(cmdline)) continue;
    const described = `pid ${entry}: ${cmdline.slice(0, 100)}`;
    const others = /\blibvirtd\b/.test(cmdline) ? otherLeaseHolders(LIBVIRTD_RUN_DIR) : [];
    if (others.length > 0) {
      result.shared.push(`${described} (in use by pid ${others.join(", ")})`);
    } else {
      result.unexpected.push(described);
    }
  }
  return result;
}

/** Whether libvirt still knows the demo's domain (asked while libvirtd still runs). */
export async function domainStillDefined(name: string): Promise<boolean> {
  return (await listDomains()).includes(name);
}
