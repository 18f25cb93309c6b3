// Which kernel modules the guest's initramfs must carry, in load order. The Debian cloud kernel
// builds some drivers in and ships others as modules (virtio_pci, virtio_blk, virtio_console on
// 6.1; ext4 built in), and the .deb has no modules.dep (depmod runs at install time, which we
// skip), so dependencies are read from each module's own `.modinfo` section (`depends=a,b`).
import { readFileSync, readdirSync } from "node:fs";
import { join } from "node:path";

/** What the guest needs: PCI transport, disks, the agent's serial port, the filesystem. */
export const WANTED_MODULES = ["virtio_pci", "virtio_blk", "virtio_console", "ext4"] as const;

export interface KernelModule {
  readonly name: string;
  readonly path: string;
}

// Module names use "_" where file names may use "-" (virtio-rng.ko is module virtio_rng).
const canonical = (name: string) => name.replace(/-/g, "_");

function indexModules(dir: string, into = new Map<string, string>()): Map<string, string> {
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) indexModules(path, into);
    else if (entry.name.endsWith(".ko")) into.set(canonical(entry.name.slice(0, -3)), path);
  }
  return into;
}

function builtins(modulesDir: string): Set<string> {
  const text = readFileSync(join(modulesDir, "modules.builtin"), "utf8");
  const names = text
    .split("\n")
    .filter(Boolean)
    .map((p) => canonical(p.split("/").pop()!.replace(/\.ko$/, "")));
  return new Set(names);
}

/** The `depends=` list from a module's .modinfo strings. */
export function dependsOf(path: string): string[] {
  const bytes = readFileSync(path);
  const at = bytes.indexOf("\0depends=");
  if (at < 0) return [];
  const start = at + "\0depends=".length;
  const end = bytes.indexOf(0, start);
  const list = bytes.subarray(start, end).toString("latin1");
  return list === "" ? [] : list.split(",").map(canonical);
}

/**
 * The modules (not built into the kernel) needed for `wanted`, dependencies first.
 * `modulesDir` is `<unpacked kernel>/lib/modules/<release>`.
 */
export function modulesToLoad(
  modulesDir: string,
  wanted: readonly string[] = WANTED_MODULES,
): KernelModule[] {
  const files = indexModules(join(modulesDir, "kernel"));
  const builtIn = builtins(modulesDir);
  const ordered: KernelModule[] = [];
  const seen = new Set<string>();
  const visit = (name: string, chain: string[]) => {
    if (seen.has(name) || builtIn.has(name)) return;
    if (chain.includes(name))
      throw new Error(`module dependency cycle: ${[...chain, name].join(" -> ")}`);
    const path = files.get(name);
    if (!path) throw new Error(`module ${name} is neither built in nor shipped in ${modulesDir}`);
    for (const dep of dependsOf(path)) visit(dep, [...chain, name]);
    seen.add(name);
    ordered.push({ name, path });
  };
  for (const name of wanted) visit(canonical(name), []);
  return ordered;
}
