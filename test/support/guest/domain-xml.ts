// Domain XML for the tiny guest: software emulation (`type='qemu'`: /dev/kvm on these machines
// is a stub and a kvm guest hangs), direct kernel boot, serial console into a file, the QEMU agent
// channel (or deliberately none), and qcow2 file disks and/or RBD network disks as virtio.
/**
 * on: qemu-ga answers. hang: qemu-ga is SIGSTOPped once up (libvirt: 86 after its 5 s sync).
 * off: the channel exists but no agent runs (86 at once). none: no channel at all (74); the guest
 * would start an agent, so its console says `agent=absent`.
 */
export type AgentMode = "on" | "hang" | "off" | "none";
/** What qemu-ga's fsfreeze hook does on freeze; "none": qemu-ga runs without a hook. */
export type HookMode = "ok" | "fail" | "hang" | "none";

export interface FileDiskSpec {
  readonly kind: "file";
  /** Guest device, e.g. "vda"; it is mounted at /mnt/<target> in the guest. */
  readonly target: string;
  readonly path: string;
  readonly format?: "qcow2" | "raw";
}

export interface RbdDiskSpec {
  readonly kind: "rbd";
  readonly target: string;
  readonly pool: string;
  readonly image: string;
  readonly monitors: ReadonlyArray<{ readonly host: string; readonly port: number }>;
  /** cephx user (without "client.") and the libvirt secret holding its key. */
  readonly auth?: { readonly username: string; readonly secretUuid: string };
}

export type DiskSpec = FileDiskSpec | RbdDiskSpec;

export interface GuestDomainSpec {
  readonly name: string;
  readonly kernel: string;
  readonly initrd: string;
  /** File QEMU writes the serial console to. */
  readonly consoleLog: string;
  readonly disks: readonly DiskSpec[];
  /** "none" leaves the agent channel out of the domain (libvirt then says code 74). */
  readonly agent?: AgentMode;
  readonly hook?: HookMode;
  readonly memoryMiB?: number;
  /** Namespaces the vmsnap owner element in <metadata> names (none: no element). */
  readonly owners?: readonly string[];
  /** MiB of RAM the guest fills with random data before "ready" (init.sh's vmsnap.dirty). */
  readonly dirtyMiB?: number;
  /** MiB of that fill rewritten 10 times a second afterwards (init.sh's vmsnap.churn). */
  readonly churnMiB?: number;
}

const esc = (s: string) =>
  s
    .replace(/&/g, "&amp;")
    .replace(/</g, "&lt;")
    .replace(/>/g, "&gt;")
    .replace(/'/g, "&apos;")
    .replace(/"/g, "&quot;");

/**
 * Boot options that roughly halved the kernel's time to /init under TCG here (5.5 s -> 2-3 s):
 * no TSC recalibration or clocksource watchdog, no IO-APIC timer probe, no speculation
 * mitigations (nothing to protect in a throw-away guest), one UART instead of 32, and the
 * domain has no ACPI (its PCI link setup alone cost ~1.4 s while loading virtio_pci).
 */
const FAST_BOOT = "mitigations=off tsc=reliable no_timer_check 8250.nr_uarts=1";

/** Kernel command line: serial console, quiet fast boot, and the init's variant knobs. */
export function kernelCmdline(
  agent: AgentMode,
  hook: HookMode,
  ram: { readonly dirtyMiB?: number; readonly churnMiB?: number } = {},
): string {
  // panic=-1 + on_reboot=destroy: a guest whose init dies stops instead of boot-looping.
  const agentKnob = agent === "none" ? "on" : agent;
  const ramKnobs =
    (ram.dirtyMiB ?? 0) > 0
      ? ` vmsnap.dirty=${Math.floor(ram.dirtyMiB!)} vmsnap.churn=${Math.floor(ram.churnMiB ?? 0)}`
      : "";
  return `console=ttyS0 quiet ${FAST_BOOT} panic=-1 rdinit=/init vmsnap.agent=${agentKnob} vmsnap.hook=${hook}${ramKnobs}`;
}

function diskXml(disk: DiskSpec): string {
  if (disk.kind === "file") {
    return [
      `<disk type='file' device='disk'>`,
      `<driver name='qemu' type='${disk.format ?? "qcow2"}'/>`,
      `<source file='${esc(disk.path)}'/>`,
      `<target dev='${esc(disk.target)}' bus='virtio'/>`,
      `</disk>`,
    ].join("");
  }
  const hosts = disk.monitors.map((m) => `<host name='${esc(m.host)}' port='${m.port}'/>`).join("");
  const auth = disk.auth
    ? `<auth username='${esc(disk.auth.username)}'><secret type='ceph' uuid='${esc(disk.auth.secretUuid)}'/></auth>`
    : "";
  return [
    `<disk type='network' device='disk'>`,
    `<driver name='qemu' type='raw' cache='writeback'/>`,
    auth,
    `<source protocol='rbd' name='${esc(`${disk.pool}/${disk.image}`)}'>${hosts}</source>`,
    `<target dev='${esc(disk.target)}' bus='virtio'/>`,
    `</disk>`,
  ].join("");
}

/** The vmsnap owner element, as a provisioner writes it into the domain XML (docs/security.md). */
export function ownerMetadataXml(owners: readonly string[] | undefined): string {
  if (owners === undefined) return "";
  const entries = owners.map((ns) => `<vmsnap:namespace>${esc(ns)}</vmsnap:namespace>`).join("");
  return `<metadata><vmsnap:owner xmlns:vmsnap='https://vmsnap.io/xmlns/owner/v1'>${entries}</vmsnap:owner></metadata>`;
}

/** The complete `<domain>` document. */
export function guestDomainXml(spec: GuestDomainSpec): string {
  const agent = spec.agent ?? "on";
  const channel =
    agent === "none"
      ? ""
      : `<channel type='unix'><source mode='bind'/><target type='virtio' name='org.qemu.guest_agent.0'/></channel>`;
  return [
    `<domain type='qemu'>`,
    `<name>${esc(spec.name)}</name>`,
    ownerMetadataXml(spec.owners),
    `<memory unit='MiB'>${spec.memoryMiB ?? 128}</memory>`,
    `<vcpu>1</vcpu>`,
    `<os><type arch='x86_64' machine='pc'>hvm</type>`,
    `<kernel>${esc(spec.kernel)}</kernel><initrd>${esc(spec.initrd)}</initrd>`,
    `<cmdline>${esc(kernelCmdline(agent, spec.hook ?? "ok", spec))}</cmdline></os>`,
    `<clock offset='utc'/>`,
    `<on_poweroff>destroy</on_poweroff><on_reboot>destroy</on_reboot><on_crash>destroy</on_crash>`,
    `<devices>`,
    ...spec.disks.map(diskXml),
    `<serial type='file'><source path='${esc(spec.consoleLog)}'/><target port='0'/></serial>`,
    channel,
    // Nothing the guest does not use: fewer devices, faster boot under emulation.
    `<controller type='usb' model='none'/>`,
    `<memballoon model='none'/>`,
    `</devices>`,
    `</domain>`,
  ].join("\n");
}
