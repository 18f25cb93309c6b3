// The guest's kernel and initramfs, built once and cached under
// `~/.cache/vmsnap/guest/<key>/` (or `$VMSNAP_CACHE_DIR/guest/`). The key hashes everything the
// result depends on: the package versions, the busybox binary, the libraries qemu-ga links, and
// the guest's own sources (init, hook, and this builder), so any change rebuilds and nothing
// stale is ever booted.
import { createHash } from "node:crypto";
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  readFileSync,
  readdirSync,
  rmSync,
  statSync,
  utimesSync,
} from "node:fs";
import { homedir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { ensurePackages } from "../libvirt/apt.ts";
import { candidate, kernelPackage, renameOrKeep, unpacked } from "./debs.ts";
import { pack, sharedLibraries, stage } from "./initramfs.ts";
import { modulesToLoad } from "./modules.ts";

export interface GuestImage {
  /** The kernel to boot directly (`<os><kernel>`). */
  readonly kernel: string;
  /** The initramfs (`<os><initrd>`). */
  readonly initrd: string;
  /** Content key naming the cache folder. */
  readonly key: string;
  /** e.g. "linux-image-6.1.0-56-cloud-amd64 6.1.192-2". */
  readonly kernelPackage: string;
}

const HERE = fileURLToPath(new URL(".", import.meta.url));
const SOURCES = ["init.sh", "fsfreeze-hook.sh", "build.ts", "initramfs.ts", "modules.ts"];
const BUSYBOX = "/bin/busybox";

/** Where built guests and downloaded packages are kept between runs. */
export function guestCacheDir(): string {
  return join(process.env.VMSNAP_CACHE_DIR ?? join(homedir(), ".cache", "vmsnap"), "guest");
}

let building: Promise<GuestImage> | undefined;

/** The cached guest image, building it first when this content key has never been built. */
export function guestImage(): Promise<GuestImage> {
  building ??= build();
  return building;
}

async function build(): Promise<GuestImage> {
  await ensurePackages(["busybox-static", "cpio"]);
  const cache = guestCacheDir();
  // apt-cache takes ~1 s per call here: ask in parallel.
  const [kernelPkg, agentPkg] = await Promise.all([kernelPackage(), candidate("qemu-guest-agent")]);
  const kernelRoot = await unpacked(kernelPkg, cache);
  const agentRoot = await unpacked(agentPkg, cache);
  const qemuGa = join(agentRoot, "usr/sbin/qemu-ga");
  const libs = await sharedLibraries(qemuGa);

  const hash = createHash("sha256");
  hash.update(`${kernelPkg.name} ${kernelPkg.version}\n${agentPkg.name} ${agentPkg.version}\n`);
  hash.update(readFileSync(BUSYBOX));
  for (const lib of libs) hash.update(readFileSync(lib));
  for (const source of SOURCES) hash.update(readFileSync(join(HERE, source)));
  const key = hash.digest("hex").slice(0, 16);

  const dir = join(cache, key);
  markUsed([dir, kernelRoot, agentRoot]);
  pruneUnused(cache);
  const image: GuestImage = {
    kernel: join(dir, "vmlinuz"),
    initrd: join(dir, "initramfs.cpio.gz"),
    key,
    kernelPackage: `${kernelPkg.name} ${kernelPkg.version}`,
  };
  if (existsSync(image.initrd)) return image;

  const tmp = `${dir}.tmp-${process.pid}`;
  rmSync(tmp, { recursive: true, force: true });
  mkdirSync(join(tmp, "root"), { recursive: true });
  const release = readdirSync(join(kernelRoot, "lib/modules"))[0];
  if (!release) throw new Error(`no lib/modules/<release> in ${kernelRoot}`);
  const vmlinuz = readdirSync(join(kernelRoot, "boot")).find((f) => f.startsWith("vmlinuz-"));
  if (!vmlinuz) throw new Error(`no boot/vmlinuz-* in ${kernelRoot}`);
  await stage(join(tmp, "root"), {
    busybox: BUSYBOX,
    qemuGa,
    modules: modulesToLoad(join(kernelRoot, "lib/modules", release)),
    init: join(HERE, "init.sh"),
    fsfreezeHook: join(HERE, "fsfreeze-hook.sh"),
  });
  await pack(join(tmp, "root"), join(tmp, "initramfs.cpio.gz"));
  rmSync(join(tmp, "root"), { recursive: true, force: true });
  copyFileSync(join(kernelRoot, "boot", vmlinuz), join(tmp, "vmlinuz"));
  renameOrKeep(tmp, dir);
  return image;
}

const KEEP_UNUSED_MS = 7 * 24 * 3600 * 1000;

/** Freshens the mtime of what this run uses, so pruning (by age) never takes it. */
function markUsed(paths: readonly string[]): void {
  const now = new Date();
  for (const path of paths) if (existsSync(path)) utimesSync(path, now, now);
}

/**
 * Deletes builds, downloads and unpacked packages nobody used for a week: every change to the
 * guest's sources makes a new ~18 MB build and every kernel update a new ~130 MB of packages.
 */
function pruneUnused(cache: string): void {
  const cutoff = Date.now() - KEEP_UNUSED_MS;
  const old = (path: string) => {
    try {
      return statSync(path).mtimeMs < cutoff;
    } catch {
      return false; // a concurrent run removed or renamed it
    }
  };
  for (const name of readdirSync(cache)) {
    const path = join(cache, name);
    if (/^[0-9a-f]{16}$/.test(name) && old(path)) rmSync(path, { recursive: true, force: true });
  }
  for (const sub of ["debs", "unpacked"]) {
    const dir = join(cache, sub);
    if (!existsSync(dir)) continue;
    for (const name of readdirSync(dir)) {
      const path = join(dir, name);
      if (old(path)) rmSync(path, { recursive: true, force: true });
    }
  }
}
