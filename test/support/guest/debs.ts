// Debian packages the guest is made of (the cloud kernel, qemu-guest-agent), fetched with
// `apt-get download` into the cache and unpacked with `dpkg-deb -x`: never installed on the host.
// Versions come from apt's candidate, so the cache key changes when Debian ships an update.
import { execFile } from "node:child_process";
import { existsSync, mkdirSync, readdirSync, renameSync, rmSync } from "node:fs";
import { join } from "node:path";
import { promisify } from "node:util";
import { aptUpdateOnce } from "../libvirt/apt.ts";

const run = promisify(execFile);

export interface DebPackage {
  readonly name: string;
  readonly version: string;
}

/** `apt-cache show` of the candidate version, with one `apt-get update` if apt knows nothing yet. */
async function showCandidate(name: string): Promise<string> {
  const show = () => run("apt-cache", ["show", "--no-all-versions", name]).then((r) => r.stdout);
  try {
    const out = await show();
    if (out.trim() !== "") return out;
  } catch {
    // fall through: a fresh machine has empty package lists
  }
  await aptUpdateOnce();
  return show();
}

function field(control: string, key: string): string {
  const match = new RegExp(`^${key}: (.*)$`, "m").exec(control);
  if (!match?.[1]) throw new Error(`apt-cache show has no ${key} field`);
  return match[1].trim();
}

/** The candidate version of a package. */
export async function candidate(name: string): Promise<DebPackage> {
  return { name, version: field(await showCandidate(name), "Version") };
}

/**
 * The real kernel package behind a metapackage such as `linux-image-cloud-amd64` (whose only
 * job is to depend on the current `linux-image-<abi>-cloud-amd64`).
 */
export async function kernelPackage(meta = "linux-image-cloud-amd64"): Promise<DebPackage> {
  const depends = field(await showCandidate(meta), "Depends");
  const real = depends
    .split(/[,|]/)
    .map((d) => d.trim().split(/\s/)[0])
    .find((d) => d?.startsWith("linux-image-"));
  if (!real) throw new Error(`${meta} depends on no linux-image package: ${depends}`);
  return candidate(real);
}

/**
 * The package unpacked under `<cacheDir>/unpacked/<name>_<version>`, downloading the .deb into
 * `<cacheDir>/debs/` first when needed. Both steps go through a temporary folder and a rename, so
 * an interrupted run leaves nothing that looks complete.
 */
export async function unpacked(pkg: DebPackage, cacheDir: string): Promise<string> {
  const id = `${pkg.name}_${pkg.version.replace(/:/g, "%3a")}`;
  const root = join(cacheDir, "unpacked", id);
  if (existsSync(root)) return root;
  const debDir = join(cacheDir, "debs", id);
  if (!existsSync(debDir)) {
    const tmp = `${debDir}.tmp-${process.pid}`;
    rmSync(tmp, { recursive: true, force: true });
    mkdirSync(tmp, { recursive: true });
    await run("apt-get", ["download", "-qq", `${pkg.name}=${pkg.version}`], {
      cwd: tmp,
      timeout: 600_000,
    });
    renameOrKeep(tmp, debDir);
  }
  const deb = readdirSync(debDir).find((f) => f.endsWith(".deb"));
  if (!deb) throw new Error(`no .deb in ${debDir}`);
  const tmp = `${root}.tmp-${process.pid}`;
  rmSync(tmp, { recursive: true, force: true });
  mkdirSync(tmp, { recursive: true });
  await run("dpkg-deb", ["-x", join(debDir, deb), tmp], { timeout: 300_000 });
  renameOrKeep(tmp, root);
  return root;
}

/** Moves a finished folder into place; when a concurrent run got there first, keeps theirs. */
export function renameOrKeep(from: string, to: string): void {
  try {
    renameSync(from, to);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if ((code !== "ENOTEMPTY" && code !== "EEXIST") || !existsSync(to)) throw err;
    rmSync(from, { recursive: true, force: true });
  }
}
