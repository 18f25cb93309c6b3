// What the controller's ThawGuard talks to: one guard, reached either as a process it spawned
// (guard-process.ts) or over a connection to a sidecar's socket (guard-connection.ts). Both
// carry the same JSON lines; this module has the interface and the reply reading they share.
import type { Readable } from "node:stream";
import { createInterface } from "node:readline";

import { decodeReply, type Command, type Reply } from "./protocol.ts";

export interface GuardLink {
  /** The guard's pid (for a connection: as the guard reported it; undefined before `ready`). */
  readonly pid: number | undefined;
  /** Resolves once the guard has its libvirt connection open and listens to us; rejects if the
   *  link ends or the start timeout passes first. */
  readonly ready: Promise<void>;
  /** Resolves (never rejects), with how it ended, once the link is gone and every reply read. */
  readonly ended: Promise<string>;
  /** Whether a guard that stops answering may be dropped for a fresh one. True for a spawned
   *  guard (our child: killed and replaced). False for a connection: dropping it would make the
   *  sidecar thaw every guest we armed, mid-snapshot, and it cannot be replaced from here. */
  readonly replaceWhenHung: boolean;
  /** Sends one command; false when the link is already closed. */
  write(command: Command): boolean;
  /** Says we are done: the guard thaws what this link armed (a spawned guard then exits). */
  end(): void;
  /** Drops the link at once: kills our child, or destroys the connection. */
  kill(): void;
}

export interface LinkHandlers {
  /** Longest wait for `ready`; the link is dropped when that passes. */
  readonly startTimeoutMs: number;
  /** Every reply after `ready`, in order. */
  readonly onReply: (reply: Reply) => void;
  /** A line that is not a reply: the guard is not what we think. */
  readonly onBadReply: (line: string, error: Error) => void;
}

/**
 * Reads a guard's replies from `input`. The first `ready` resolves the returned promise with
 * the guard's pid; later replies go to `onReply`. Rejects when `ended` comes first, or when the
 * start timeout passes (`giveUp` is called then, to drop the link).
 */
export function readReplies(
  input: Readable,
  ended: Promise<string>,
  handlers: LinkHandlers,
  giveUp: () => void,
  messages: { notReady: (ms: number) => string; endedEarly: (how: string) => string },
): Promise<number> {
  const ready = new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => {
      giveUp();
      reject(new Error(messages.notReady(handlers.startTimeoutMs)));
    }, handlers.startTimeoutMs);
    timer.unref();
    void ended.then((how) => {
      clearTimeout(timer);
      reject(new Error(messages.endedEarly(how)));
    });
    let isReady = false;
    const lines = createInterface({ input, crlfDelay: Infinity });
    // readline re-emits its input's errors (a refused or broken connection); the link's own
    // error handling covers them, and an unheard 'error' would crash the controller.
    lines.on("error", () => {});
    lines.on("line", (line) => {
      let reply: Reply;
      try {
        reply = decodeReply(line);
      } catch (err) {
        handlers.onBadReply(line, err as Error);
        return;
      }
      if (reply.type === "ready" && !isReady) {
        isReady = true;
        clearTimeout(timer);
        resolve(reply.pid);
      } else {
        handlers.onReply(reply);
      }
    });
  });
  // Rejections are for whoever awaits ready; an unobserved one must not crash the controller.
  ready.catch(() => {});
  return ready;
}
