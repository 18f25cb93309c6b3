// Packs the guest's whole userland into one gzip'd newc cpio archive, the initramfs the kernel
// runs from RAM: busybox-static, qemu-ga with the shared libraries and loader `ldd` names, the
// kernel modules in load order, /init and the fsfreeze hook. No root filesystem image needed.
import { execFile, spawn } from "node:child_process";
import {
  chmodSync,
  copyFileSync,
  createWriteStream,
  mkdirSync,
  readdirSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { dirname, join } from "node:path";
import { pipeline } from "node:stream/promises";
import { promisify } from "node:util";
import { createGzip } from "node:zlib";
import type { KernelModule } from "./modules.ts";

const run = promisify(execFile);

export interface InitramfsContents {
  /** A statically linked busybox (Debian's busybox-static: /bin/busybox). */
  busybox: string;
  /** The qemu-ga binary unpacked from the qemu-guest-agent .deb. */
  qemuGa: string;
  /** Modules in load order (modules.ts). */
  modules: readonly KernelModule[];
  /** The /init script. */
  init: string;
  /** qemu-ga's --fsfreeze-hook script. */
  fsfreezeHook: string;
}

/**
 * Absolute paths of the shared libraries and the ELF loader a dynamic binary needs, as `ldd`
 * resolves them on this host (the guest gets the host's copies, at the same paths).
 */
export async function sharedLibraries(binary: string): Promise<string[]> {
  const { stdout } = await run("ldd", [binary]);
  const paths: string[] = [];
  for (const line of stdout.split("\n")) {
    // "libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x...)" or "/lib64/ld-linux-x86-64.so.2 (0x...)"
    const match = /(?:=>\s*)?(\/\S+)\s+\(0x[0-9a-f]+\)/.exec(line);
    if (match?.[1]) paths.push(match[1]);
    else if (/not found/.test(line)) throw new Error(`ldd ${binary}: ${line.trim()}`);
  }
  return paths;
}

function put(root: string, path: string, from: string, mode: number): void {
  const to = join(root, path);
  mkdirSync(dirname(to), { recursive: true });
  copyFileSync(from, to); // follows symlinks: the archive holds real files
  chmodSync(to, mode);
}

/** Lays the guest's files out under `root` (an empty folder). */
export async function stage(root: string, contents: InitramfsContents): Promise<void> {
  for (const dir of [
    "proc",
    "sys",
    "dev",
    "run",
    "tmp",
    "mnt",
    "var",
    "usr/bin",
    "usr/sbin",
    "sbin",
  ]) {
    mkdirSync(join(root, dir), { recursive: true });
  }
  put(root, "bin/busybox", contents.busybox, 0o755);
  // The kernel runs /init through its #! line, before busybox has installed its links.
  symlinkSync("busybox", join(root, "bin/sh"));
  symlinkSync("../run", join(root, "var/run"));
  put(root, "init", contents.init, 0o755);
  put(root, "usr/local/sbin/fsfreeze-hook", contents.fsfreezeHook, 0o755);
  put(root, "usr/sbin/qemu-ga", contents.qemuGa, 0o755);
  for (const lib of await sharedLibraries(contents.qemuGa)) put(root, lib, lib, 0o755);
  for (const m of contents.modules) put(root, `lib/modules/${m.name}.ko`, m.path, 0o644);
  writeFileSync(
    join(root, "lib/modules/load.order"),
    contents.modules.map((m) => m.name).join("\n") + "\n",
  );
}

/** Every path under `root`, relative, parents before children (the order cpio wants). */
function listTree(root: string, prefix = ""): string[] {
  const names: string[] = [];
  for (const entry of readdirSync(join(root, prefix), { withFileTypes: true })) {
    const rel = prefix === "" ? entry.name : `${prefix}/${entry.name}`;
    names.push(rel);
    if (entry.isDirectory()) names.push(...listTree(root, rel));
  }
  return names;
}

/** Archives `root` as a gzip'd newc cpio owned by root:root into `out`. */
export async function pack(root: string, out: string): Promise<void> {
  const cpio = spawn("cpio", ["--create", "--format=newc", "--quiet", "--owner=0:0"], {
    cwd: root,
    stdio: ["pipe", "pipe", "pipe"],
  });
  let stderr = "";
  cpio.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
  const exited = new Promise<void>((resolve, reject) => {
    cpio.once("error", reject);
    cpio.once("close", (code) =>
      code === 0 ? resolve() : reject(new Error(`cpio exited ${code}: ${stderr}`)),
    );
  });
  cpio.stdin.end(listTree(root).join("\n") + "\n");
  await Promise.all([
    pipeline(cpio.stdout, createGzip({ level: 6 }), createWriteStream(out)),
    exited,
  ]);
}
