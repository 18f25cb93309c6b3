// What the guest's writers show about a snapshot: waiting for records, and the writer's log as
// the guest sees it on its disk (read through the agent), so a test can check that no sequence
// number was lost.
import { setTimeout as sleep } from "node:timers/promises";
import { agentCommand } from "../libvirt/agent.ts";
import {
  writerFileRecords,
  type Guest,
  type WriterFileRecord,
  type WriterRecord,
} from "../guest/index.ts";

/** Waits until the disk's writer printed a record with seq >= `seq`; returns all its records. */
export async function waitForSeq(
  guest: Guest,
  disk: string,
  seq: number,
  timeoutMs = 30_000,
): Promise<WriterRecord[]> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const records = guest.writerRecords(disk);
    if ((records.at(-1)?.seq ?? 0) >= seq) return records;
    if (Date.now() > deadline) {
      throw new Error(
        `writer on ${disk} of ${guest.name} stuck at seq ${records.at(-1)?.seq ?? 0} (waiting for ${seq})\n` +
          guest.console().slice(-1500),
      );
    }
    await sleep(100);
  }
}

/** The last seq the disk's writer printed (0 before the first). */
export function lastSeq(guest: Guest, disk: string): number {
  return guest.writerRecords(disk).at(-1)?.seq ?? 0;
}

/** The writer's log file on the guest's disk now, read through the agent. */
export async function guestWriterLog(guest: Guest, disk: string): Promise<WriterFileRecord[]> {
  const path = `/mnt/${disk}/vmsnap-writer.log`;
  const handle = await agentCommand<number>(guest.name, "guest-file-open", { path, mode: "r" });
  try {
    const read = await agentCommand<{ "buf-b64": string }>(guest.name, "guest-file-read", {
      handle,
      count: 4 * 1024 * 1024,
    });
    return writerFileRecords(Buffer.from(read["buf-b64"], "base64").toString("utf8"));
  } finally {
    await agentCommand(guest.name, "guest-file-close", { handle });
  }
}
