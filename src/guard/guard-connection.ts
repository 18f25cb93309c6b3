// One connection to a sidecar guard (guard-server.ts), seen from the controller: a unix socket
// carrying the same lines as a spawned guard's pipes. The guard owns what this connection arms
// and thaws all of it when the connection closes — which the kernel does for us however this
// process dies. Reconnecting and re-arming are thaw-guard.ts's job.
import { createConnection } from "node:net";

import { readReplies, type GuardLink, type LinkHandlers } from "./guard-link.ts";
import { encode, type Command } from "./protocol.ts";

export interface GuardConnectionOptions extends LinkHandlers {
  /** The guard's socket (its `--listen`). */
  readonly socketPath: string;
}

export class GuardConnection implements GuardLink {
  readonly replaceWhenHung = false;
  private guardPid: number | undefined;
  readonly ready: Promise<void>;
  readonly ended: Promise<string>;

  private constructor(
    private readonly socket: ReturnType<typeof createConnection>,
    options: GuardConnectionOptions,
  ) {
    // Never what keeps the controller alive; a pending call's own timer does.
    socket.unref();
    let failure: Error | undefined;
    // A refused connect, or a guard that vanished: 'close' follows and ends the link.
    socket.on("error", (err) => (failure ??= err));
    this.ended = new Promise<string>((resolve) => {
      socket.once("close", () =>
        resolve(failure ? failure.message : "the guard closed the connection"),
      );
    });
    const drop = () => socket.destroy();
    this.ready = readReplies(
      socket,
      this.ended,
      {
        ...options,
        onBadReply: (line, error) => {
          options.onBadReply(line, error);
          drop();
        },
      },
      drop,
      {
        notReady: (ms) => `thaw guard at ${options.socketPath} did not answer within ${ms} ms`,
        endedEarly: (how) => `cannot reach the thaw guard at ${options.socketPath}: ${how}`,
      },
    ).then((pid) => {
      this.guardPid = pid;
    });
    this.ready.catch(() => {});
  }

  /** Connects to the guard listening on `options.socketPath`. */
  static open(options: GuardConnectionOptions): GuardConnection {
    return new GuardConnection(createConnection({ path: options.socketPath }), options);
  }

  get pid(): number | undefined {
    return this.guardPid;
  }

  write(command: Command): boolean {
    if (this.socket.destroyed || !this.socket.writable) return false;
    this.socket.write(encode(command));
    return true;
  }

  /** Ends our side: the guard thaws what we armed, reports it, and closes the connection. */
  end(): void {
    this.socket.end();
  }

  /** Drops the connection: the guard thaws at once every guest this connection armed. */
  kill(): void {
    this.socket.destroy();
  }
}
