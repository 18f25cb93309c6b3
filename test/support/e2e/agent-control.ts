// Making a running guest's agent misbehave on cue, and well again, so one booted guest serves
// several agent cases (each boot costs 5-20 s of the e2e budget under emulation):
// - the freeze hook's mode (`/run/vmsnap-hook-mode`, which the hook reads on every call);
// - an agent that hangs (SIGSTOP) or is gone (SIGKILL) until the host says otherwise.
// A hung or dead agent cannot take the host's "go on", so the signal travels another way: the
// host grows a disk by 1 MiB (`virsh blockresize`), the guest sees /sys/block/<disk>/size change
// and a script started beforehand (guest-exec, while the agent still answered) continues or
// restarts qemu-ga. Every step shows on the serial console with a nonce, which the host waits for.
import { randomBytes } from "node:crypto";
import type { Guest, HookMode } from "../guest/index.ts";
import { agentCommand } from "../libvirt/agent.ts";
import { virsh } from "../libvirt/virsh.ts";

/** Sets what the guest's fsfreeze hook does on the next freeze. */
export async function setFreezeHookMode(guest: Guest, mode: HookMode): Promise<void> {
  const handle = await agentCommand<number>(guest.name, "guest-file-open", {
    path: "/run/vmsnap-hook-mode",
    mode: "w",
  });
  try {
    await agentCommand(guest.name, "guest-file-write", {
      handle,
      "buf-b64": Buffer.from(`${mode}\n`).toString("base64"),
    });
  } finally {
    await agentCommand(guest.name, "guest-file-close", { handle });
  }
}

/** Starts `script` under /bin/sh in the guest (guest-exec) without waiting for it. */
export async function guestShell(guest: Guest, script: string): Promise<void> {
  await agentCommand(guest.name, "guest-exec", { path: "/bin/sh", arg: ["-c", script] });
}

export interface AgentOutage {
  /** Ends the outage (grows `disk` by 1 MiB) and waits until the guest says it acted. */
  end(): Promise<void>;
}

/**
 * SIGSTOPs qemu-ga until `end()`: libvirt's guest-sync then times out after 5 s (code 86) and
 * nothing the host asks for reaches the agent; after SIGCONT it answers again.
 */
export function hangAgent(guest: Guest, disk = "vda"): Promise<AgentOutage> {
  return outage(guest, disk, "stopped", 'kill -STOP "$ga"', "continued", 'kill -CONT "$ga"');
}

/**
 * SIGKILLs qemu-ga (libvirt: code 86 at once, nobody on the channel) and starts it again with
 * the same command line on `end()`.
 */
export function killAgent(guest: Guest, disk = "vda"): Promise<AgentOutage> {
  return outage(
    guest,
    disk,
    "killed",
    'kill -KILL "$ga"',
    "restarted",
    // /init starts qemu-ga with the initramfs's own libraries (see guest/init.sh).
    "LD_LIBRARY_PATH=/lib/x86_64-linux-gnu $cmd &",
  );
}

async function outage(
  guest: Guest,
  disk: string,
  began: string,
  begin: string,
  ended: string,
  finish: string,
): Promise<AgentOutage> {
  const nonce = randomBytes(4).toString("hex");
  const say = (what: string) => `echo "vmsnap-e2e: agent ${what} ${nonce}" >/dev/console`;
  const size = `/sys/block/${disk}/size`;
  await guestShell(
    guest,
    [
      "ga=$(pidof qemu-ga)",
      `cmd=$(tr '\\0' ' ' </proc/$ga/cmdline)`,
      `s=$(cat ${size})`,
      // Let the agent deliver guest-exec's answer before it goes away.
      "sleep 0.5",
      `${begin} && ${say(began)}`,
      `while [ "$(cat ${size})" = "$s" ]; do sleep 0.1; done`,
      `${finish}`,
      say(ended),
    ].join("\n"),
  );
  await guest.waitForConsole(new RegExp(`^vmsnap-e2e: agent ${began} ${nonce}$`, "m"), 15_000);
  return {
    async end() {
      const info = await virsh(["domblkinfo", guest.name, disk]);
      const capacity = Number(/^Capacity:\s+(\d+)/m.exec(info)?.[1]);
      if (!(capacity > 0)) throw new Error(`no capacity of ${disk} in: ${info}`);
      await virsh(["blockresize", guest.name, disk, `${capacity + 1024 * 1024}B`]);
      await guest.waitForConsole(new RegExp(`^vmsnap-e2e: agent ${ended} ${nonce}$`, "m"), 15_000);
    },
  };
}
