// The host configuration a system libvirtd needs in this kind of container (no systemd, no
// virtlogd, root only), applied idempotently. Each setting is here because without it the daemon
// or the guest failed on these machines (docs/libvirt-facts.md, "A real libvirtd in a container
// without systemd").
import { execFile } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname } from "node:path";
import { promisify } from "node:util";

const run = promisify(execFile);

export const QEMU_CONF = "/etc/libvirt/qemu.conf";

/**
 * qemu.conf keys we need. `stdio_handler = "file"`: QEMU's output goes straight to a file instead
 * of through virtlogd, which nothing starts here. `user`/`group = "root"`: the guest's kernel,
 * initramfs and disks live in root's cache and temp folders.
 */
export const QEMU_SETTINGS: Readonly<Record<string, string>> = {
  stdio_handler: '"file"',
  user: '"root"',
  group: '"root"',
};

/** The libvirt-qemu account: libvirt looks it up at start, before it reads qemu.conf's `user`. */
async function ensureAccount(): Promise<void> {
  const exists = (db: string) =>
    run("getent", [db, "libvirt-qemu"]).then(
      () => true,
      () => false,
    );
  if (!(await exists("group"))) await run("groupadd", ["--system", "libvirt-qemu"]);
  if (!(await exists("passwd"))) {
    await run("useradd", [
      "--system",
      "--gid",
      "libvirt-qemu",
      "--no-create-home",
      "--home-dir",
      "/var/lib/libvirt",
      "--shell",
      "/usr/sbin/nologin",
      "libvirt-qemu",
    ]);
  }
}

/**
 * Sets `key = value` lines in a libvirt-style config file: an active line for the key is replaced,
 * otherwise one is appended; comments and other keys are left alone. Returns whether it changed.
 */
export function ensureConfSettings(
  path: string,
  settings: Readonly<Record<string, string>>,
): boolean {
  const before = existsSync(path) ? readFileSync(path, "utf8") : "";
  const lines = before === "" ? [] : before.replace(/\n$/, "").split("\n");
  const appended: string[] = [];
  for (const [key, value] of Object.entries(settings)) {
    const wanted = `${key} = ${value}`;
    const index = lines.findIndex((line) => new RegExp(`^\\s*${key}\\s*=`).test(line));
    if (index >= 0) lines[index] = wanted;
    else appended.push(wanted);
  }
  if (appended.length > 0)
    lines.push("# set by vmsnap's test harness (test/support/libvirt/host.ts)", ...appended);
  const after = `${lines.join("\n")}\n`;
  if (after === before) return false;
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, after);
  return true;
}

/** The daemon's own config: with no polkit and no systemd, the unix socket must not ask for auth. */
export function writeDaemonConfig(path: string): void {
  writeFileSync(
    path,
    [
      "# libvirtd config for vmsnap's end-to-end tests (test/support/libvirt/host.ts)",
      'auth_unix_rw = "none"',
      'auth_unix_ro = "none"',
      'unix_sock_group = "root"',
      "",
    ].join("\n"),
  );
}

/** Applies every host-level prerequisite; safe to call again. */
export async function prepareHost(): Promise<void> {
  await ensureAccount();
  ensureConfSettings(QEMU_CONF, QEMU_SETTINGS);
}
