// Talking to a guest's QEMU agent through libvirt, for tests: raw agent commands
// (`virsh qemu-agent-command`) and libvirt's own freeze/thaw (`virsh domfsfreeze/domfsthaw`),
// the same paths the product takes through its binding.
import { virsh } from "./virsh.ts";

export interface AgentCallOptions {
  /** libvirt's wait for the agent's answer, in seconds (its default is 5 s for sync, then blocking). */
  agentTimeoutSec?: number;
  /** Deadline for the virsh process itself. */
  timeoutMs?: number;
}

/** Sends `{"execute": command, "arguments": args}` and returns the agent's `return` value. */
export async function agentCommand<T = unknown>(
  domain: string,
  command: string,
  args?: Record<string, unknown>,
  options: AgentCallOptions = {},
): Promise<T> {
  const request = JSON.stringify(
    args === undefined ? { execute: command } : { execute: command, arguments: args },
  );
  const timeout =
    options.agentTimeoutSec === undefined ? [] : ["--timeout", String(options.agentTimeoutSec)];
  const out = await virsh(["qemu-agent-command", domain, ...timeout, request], {
    timeoutMs: options.timeoutMs,
  });
  return (JSON.parse(out) as { return: T }).return;
}

/** `guest-fsfreeze-status`: "frozen" or "thawed". */
export async function freezeStatus(domain: string): Promise<"frozen" | "thawed"> {
  return agentCommand<"frozen" | "thawed">(domain, "guest-fsfreeze-status");
}

/** virDomainFSFreeze of every mounted filesystem; returns how many were frozen. */
export async function fsFreeze(domain: string, timeoutMs = 60_000): Promise<number> {
  return countFrom(await virsh(["domfsfreeze", domain], { timeoutMs, quiet: false }));
}

/** virDomainFSThaw of every filesystem; returns how many were thawed. */
export async function fsThaw(domain: string, timeoutMs = 60_000): Promise<number> {
  return countFrom(await virsh(["domfsthaw", domain], { timeoutMs, quiet: false }));
}

// virsh prints "Froze 1 filesystem(s)" / "Thawed 1 filesystem(s)".
function countFrom(out: string): number {
  const match = /(\d+) filesystem/.exec(out);
  if (!match) throw new Error(`unexpected virsh output: ${out.trim()}`);
  return Number(match[1]);
}
