// Is a snapshot a clean filesystem? Brings a snapshot to a raw image on the host (an RBD image
// snapshot by `rbd export`, a qcow2 file by `qemu-img convert`) and asks e2fsprogs, read-only:
// `e2fsck -fn` (exit 0 only when nothing needs fixing; -n never replays the journal),
// `dumpe2fs -h` (`needs_recovery`: captured while mounted read-write and not frozen, so the
// journal must be replayed before the filesystem is whole), and `debugfs` for the writer's log
// as the snapshot holds it.
import { execFile } from "node:child_process";
import { rmSync } from "node:fs";
import { join } from "node:path";
import { promisify } from "node:util";
import type { DiskSnapshotHandle } from "../../../src/storage/backend.ts";
import type { CephCluster } from "../ceph/cluster.ts";
import { writerFileRecords, type WriterFileRecord } from "../guest/index.ts";

const run = promisify(execFile);
const TOOL_TIMEOUT_MS = 120_000;

export interface Ext4Check {
  /** e2fsck -fn exited 0. */
  readonly fsckClean: boolean;
  readonly fsckExit: number;
  readonly fsckOutput: string;
  /** The superblock says the journal must be replayed before the filesystem is consistent. */
  readonly needsRecovery: boolean;
  /** The writer's log in the image, as debugfs reads it (without replaying the journal). */
  readonly writerLog: WriterFileRecord[];
}

/** `rbd export pool/image@snap raw` (an image snapshot: group snapshots can't be exported). */
export async function exportRbdSnapshot(
  ceph: CephCluster,
  imageSnap: string,
  raw: string,
): Promise<void> {
  const r = await ceph.rbd(["export", "--no-progress", imageSnap, raw], {
    timeoutMs: TOOL_TIMEOUT_MS,
  });
  if (r.code !== 0) throw new Error(`rbd export ${imageSnap} exited ${r.code}: ${r.stderr}`);
}

/** A qcow2 file as a raw image; -U because QEMU still holds the file open (read-only now). */
export async function qcow2ToRaw(qcow2: string, raw: string): Promise<void> {
  await run("qemu-img", ["convert", "-U", "-f", "qcow2", "-O", "raw", qcow2, raw], {
    timeout: TOOL_TIMEOUT_MS,
  });
}

export async function checkExt4(raw: string): Promise<Ext4Check> {
  let fsckExit = 0;
  let fsckOutput: string;
  try {
    const { stdout, stderr } = await run("e2fsck", ["-fn", raw], { timeout: TOOL_TIMEOUT_MS });
    fsckOutput = stdout + stderr;
  } catch (err) {
    const e = err as { code?: number; stdout?: string; stderr?: string };
    fsckExit = typeof e.code === "number" ? e.code : -1;
    fsckOutput = `${e.stdout ?? ""}${e.stderr ?? ""}`;
  }
  const { stdout: header } = await run("dumpe2fs", ["-h", raw], { timeout: TOOL_TIMEOUT_MS });
  const features = /^Filesystem features:\s*(.*)$/m.exec(header)?.[1] ?? "";
  return {
    fsckClean: fsckExit === 0,
    fsckExit,
    fsckOutput,
    needsRecovery: features.split(/\s+/).includes("needs_recovery"),
    writerLog: await writerLog(raw),
  };
}

/** The writer's log in the image as debugfs reads it (it never replays the journal). */
async function writerLog(raw: string): Promise<WriterFileRecord[]> {
  const { stdout } = await run("debugfs", ["-R", "cat /vmsnap-writer.log", raw], {
    timeout: TOOL_TIMEOUT_MS,
  });
  return writerFileRecords(stdout);
}

/** One line for the test log: what the check found. */
export function describeExt4(label: string, c: Ext4Check): string {
  const last = c.writerLog.at(-1)?.seq ?? 0;
  return (
    `${label}: e2fsck -fn exit ${c.fsckExit} (${c.fsckClean ? "clean" : "NOT clean"}), ` +
    `${c.needsRecovery ? "needs_recovery SET" : "no needs_recovery"}, writer log up to seq ${last}`
  );
}

/**
 * The check of what one disk's snapshot holds, from its handle in status: an RBD image snapshot
 * is exported; for a file disk, the file the handle names became the backing file of the new
 * overlay at the snapshot and holds the disk as it was then (qemu-img follows its own backing
 * chain, if it has one). The raw copy lives in `workDir` only while it is checked. With
 * `recover`, the copy's journal is then replayed (`e2fsck -fy`, what a mount would do) and the
 * writer's log read again: what a crash-consistent snapshot holds once recovered.
 */
export async function checkSnapshotOfDisk(
  ceph: CephCluster,
  handle: DiskSnapshotHandle,
  workDir: string,
  options: { recover?: boolean } = {},
): Promise<Ext4Check & { recoveredLog?: WriterFileRecord[] }> {
  const raw = join(workDir, `${handle.target}.snapshot.raw`);
  try {
    if (handle.backend === "rbd") await exportRbdSnapshot(ceph, handle.snapshot, raw);
    else await qcow2ToRaw(handle.source, raw);
    const check = await checkExt4(raw);
    if (!options.recover) return check;
    // e2fsck exits 1 when it fixed something (here: replayed the journal).
    await run("e2fsck", ["-fy", raw], { timeout: TOOL_TIMEOUT_MS }).catch(() => undefined);
    return { ...check, recoveredLog: await writerLog(raw) };
  } finally {
    rmSync(raw, { force: true });
  }
}
