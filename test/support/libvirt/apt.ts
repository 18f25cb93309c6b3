// Debian packages the libvirt/guest harness needs, installed only when missing, so a fresh
// machine runs the end-to-end tests with no manual step (the Makefile `apt` target does the
// same ahead of time). Also the one place that runs `apt-get update`, at most once per run.
import { execFile } from "node:child_process";
import { promisify } from "node:util";

const run = promisify(execFile);

/** Everything the real libvirtd and the tiny guest need on the host. */
export const LIBVIRT_PACKAGES = [
  "libvirt-daemon",
  "libvirt-daemon-driver-qemu",
  "libvirt-clients",
  "qemu-system-x86",
  "qemu-utils",
  "qemu-block-extra",
  "busybox-static",
  "cpio",
  "e2fsprogs",
] as const;

let updated: Promise<void> | undefined;

/** `apt-get update`, once per process: needed before installs or downloads on a fresh machine. */
export function aptUpdateOnce(): Promise<void> {
  updated ??= run("apt-get", ["update", "-qq"], { timeout: 300_000 }).then(() => undefined);
  return updated;
}

/** The subset of `packages` that dpkg does not report as installed. */
export async function missingPackages(packages: readonly string[]): Promise<string[]> {
  const missing: string[] = [];
  for (const name of packages) {
    const status = await run("dpkg-query", ["-W", "-f=${Status}", name]).then(
      (r) => r.stdout,
      () => "",
    );
    if (!status.includes("install ok installed")) missing.push(name);
  }
  return missing;
}

/** Installs whichever of `packages` are missing (no recommends, non-interactive). */
export async function ensurePackages(packages: readonly string[]): Promise<void> {
  const missing = await missingPackages(packages);
  if (missing.length === 0) return;
  await aptUpdateOnce();
  await run("apt-get", ["install", "-y", "-qq", "--no-install-recommends", ...missing], {
    timeout: 600_000,
    env: { ...process.env, DEBIAN_FRONTEND: "noninteractive" },
  });
}
