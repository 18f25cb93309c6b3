// Drives fixtures/sidecar-client.ts, a ThawGuard.connect client in a process of its own: one
// request at a time, answered in order; event lines (thawed, lost) are collected as they come.
import { spawn, type ChildProcess } from "node:child_process";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";

import { hasExited, type GuardLog } from "./guard-log.ts";
import { when } from "./frozen-domain.ts";

const FIXTURE = fileURLToPath(new URL("./fixtures/sidecar-client.ts", import.meta.url));

export interface ClientReply {
  readonly op?: string;
  readonly ok?: boolean;
  readonly error?: string;
  readonly [field: string]: unknown;
}

export class ClientProcess {
  readonly events: ClientReply[] = [];
  private readonly replies: ClientReply[] = [];

  private constructor(private readonly child: ChildProcess) {
    createInterface({ input: child.stdout! }).on("line", (line) => {
      const message = JSON.parse(line) as ClientReply;
      (message.event !== undefined ? this.events : this.replies).push(message);
    });
  }

  get pid(): number {
    return this.child.pid!;
  }

  /** Starts a client and waits until it is connected to the guard at `socketPath`. */
  static async start(socketPath: string, uri: string, log: GuardLog): Promise<ClientProcess> {
    const child = spawn(process.execPath, ["--import", "tsx", FIXTURE, socketPath, uri], {
      detached: true,
      stdio: ["pipe", "pipe", log.fd],
    });
    const client = new ClientProcess(child);
    await when(
      "the client to connect",
      () => {
        if (child.exitCode !== null) throw new Error(`client exited:\n${log.text()}`);
        return client.events.some((e) => e.event === "connected");
      },
      30_000,
    );
    return client;
  }

  /** Sends one request and resolves with its reply. */
  async request(request: object, timeoutMs = 10_000): Promise<ClientReply> {
    const index = this.replies.length;
    this.child.stdin!.write(`${JSON.stringify(request)}\n`);
    await when("the client's reply", () => this.replies.length > index, timeoutMs);
    return this.replies[index]!;
  }

  /** SIGKILL, by pid: the client dies without a word, as a controller can. */
  kill(): void {
    if (!hasExited(this.pid)) process.kill(this.pid, "SIGKILL");
  }
}
