// The guard as a long-lived server: the sidecar mode. A controller cannot keep a guard it spawned
// alive through its own death when it is PID 1 of its container (the kernel then kills the whole
// PID namespace), so in a pod the guard runs in a container of its own and the controller
// connects to it over a unix socket in a folder both containers mount.
//
// Each connection is a session (guard-session.ts) speaking the stdin protocol; its entries are
// its own. A connection that closes — its controller exited or was SIGKILLed: the kernel closes
// the socket either way — has every entry it armed fired at once. One controller is expected;
// a second one is served all the same, its entries kept apart.
import { chmodSync, lstatSync, unlinkSync } from "node:fs";
import { createConnection, createServer, type Server, type Socket } from "node:net";

import { GuardSession, type SessionOptions } from "./guard-session.ts";
import { GuardState } from "./guard-state.ts";
import type { Log } from "./log.ts";
import { encode, MAX_LINE_LENGTH, type FireCause } from "./protocol.ts";

export interface GuardServerOptions extends Pick<SessionOptions, "thaw" | "stopping"> {
  /** The socket's path; its folder must exist. */
  readonly path: string;
  readonly log: Log;
}

export class GuardServer {
  private readonly sessions = new Map<GuardSession, Socket>();
  private connections = 0;
  /** Shared by every connection: a controller that reconnects still sees the thaws a lost
   *  connection left under way. */
  private readonly state = new GuardState();

  private constructor(
    private readonly server: Server,
    private readonly o: GuardServerOptions,
  ) {}

  /**
   * Listens on `o.path`, mode 0600. A socket file left by a guard that died is replaced; one a
   * live guard answers on is not (throws), nor is a file that is not a socket.
   */
  static async listen(o: GuardServerOptions): Promise<GuardServer> {
    await claimPath(o.path, o.log);
    // Half-open: a client that ends its side still hears the thaws that its end caused.
    const server = createServer({ allowHalfOpen: true });
    const guard = new GuardServer(server, o);
    server.on("connection", (socket) => guard.accept(socket));
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      // The socket is created by bind(), inside listen(): created 0600, never briefly wider.
      const umask = process.umask(0o177);
      try {
        server.listen(o.path, () => resolve());
      } finally {
        process.umask(umask);
      }
    });
    chmodSync(o.path, 0o600);
    server.on("error", (err) => o.log("error", "socket server error", { error: String(err) }));
    return guard;
  }

  /** Entries armed over all connections. */
  get armed(): number {
    let n = 0;
    for (const session of this.sessions.keys()) n += session.armed;
    return n;
  }

  /** Stops accepting (the socket file goes), fires every entry of every connection, and ends
   *  the connections once their thaws are reported. */
  async stop(cause: FireCause): Promise<void> {
    this.server.close();
    await Promise.all(
      [...this.sessions].map(async ([session, socket]) => {
        await session.drain(cause);
        socket.end();
      }),
    );
  }

  private accept(socket: Socket): void {
    const fields = { client: ++this.connections };
    const log = this.o.log;
    socket.setEncoding("utf8");
    // A client that vanished makes writes fail; 'close' follows, and handles it.
    socket.on("error", () => {});
    const send = (reply: Parameters<SessionOptions["send"]>[0]) => {
      if (socket.writable) socket.write(encode(reply));
    };
    const session = new GuardSession({ ...this.o, send, fields, state: this.state });
    this.sessions.set(session, socket);
    log(this.sessions.size > 1 ? "warn" : "info", "client connected", {
      ...fields,
      clients: this.sessions.size,
    });
    send({ type: "ready", pid: process.pid });
    session.sendState();

    let buffered = "";
    socket.on("data", (chunk: string) => {
      buffered += chunk;
      for (let end = buffered.indexOf("\n"); end >= 0; end = buffered.indexOf("\n")) {
        const line = buffered.slice(0, end).replace(/\r$/, "");
        buffered = buffered.slice(end + 1);
        session.receive(line);
      }
      // Not our protocol (a command is ~150 characters): never buffer it without bound.
      if (buffered.length > MAX_LINE_LENGTH) {
        log("error", "line too long; dropping the client", fields);
        socket.destroy();
      }
    });

    let gone = false;
    const orphaned = (why: string) => {
      if (gone) return;
      gone = true;
      session.close();
      const armed = session.armed;
      void session.drain("orphaned").then(() => {
        this.sessions.delete(session);
        socket.end();
        log("info", "client gone", { ...fields, why, thawedEntries: armed });
      });
    };
    // The controller ended its side (close()) or died: nobody else will thaw these guests.
    socket.on("end", () => orphaned("it closed the connection"));
    socket.on("close", () => orphaned("the connection broke"));
  }
}

/** Makes `path` free to listen on, removing only a socket nobody answers on. */
async function claimPath(path: string, log: Log): Promise<void> {
  let isSocket: boolean;
  try {
    isSocket = lstatSync(path).isSocket();
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return;
    throw err;
  }
  if (!isSocket) throw new Error(`${path} exists and is not a socket; not removing it`);
  if (await answers(path)) throw new Error(`another thaw guard is listening on ${path}`);
  unlinkSync(path);
  log("warn", "replaced the socket of a guard that is gone", { path });
}

/** Whether something accepts connections on `path` (a guard stopped by a signal does too). */
function answers(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const probe = createConnection(path);
    probe.once("connect", () => {
      probe.destroy();
      resolve(true);
    });
    probe.once("error", () => resolve(false));
  });
}
