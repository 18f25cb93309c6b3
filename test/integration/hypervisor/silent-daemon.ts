// A "libvirt daemon" that accepts connections and never answers: what a hung libvirtd looks
// like to a client. Opening a connection to it blocks in libvirt until the socket closes.
import { mkdtempSync, rmSync } from "node:fs";
import { createServer, type Socket } from "node:net";
import { join } from "node:path";

export interface SilentDaemon {
  readonly uri: string;
  /** Connections accepted so far. */
  readonly accepted: () => number;
  /** Closes every connection (the hung libvirt calls then fail) and the socket. */
  stop(): Promise<void>;
}

export async function startSilentDaemon(): Promise<SilentDaemon> {
  const dir = mkdtempSync("/tmp/vmsnap-silent-");
  const path = join(dir, "libvirt-sock");
  const sockets = new Set<Socket>();
  let accepted = 0;
  const server = createServer((socket) => {
    accepted++;
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
    socket.on("error", () => {});
    socket.resume(); // read and discard whatever the client sends
  });
  await new Promise<void>((resolve, reject) => server.once("error", reject).listen(path, resolve));
  return {
    uri: `qemu+unix:///system?socket=${path}`,
    accepted: () => accepted,
    async stop() {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
