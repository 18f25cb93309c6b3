// A libvirt caller that stops itself: it opens a connection, says `ready`, and on `go` (a line on
// stdin) starts `suspend` with a short deadline and, unless told otherwise, sends itself SIGSTOP
// at once, the whole process, the addon's threads included, as a debugger, a cgroup freezer or
// an administrator's `kill -STOP` would. Whoever sent SIGCONT reads one JSON line: how the call
// ended. Run with `node --import tsx stalled-caller.ts <uri> <domain> <timeoutMs> <stop|run>`.
import { createInterface } from "node:readline";

import { Hypervisor } from "../../../src/hypervisor/connection.ts";
import { HypervisorError } from "../../../src/hypervisor/errors.ts";

const [uri, domain, timeout, mode] = process.argv.slice(2);
const hv = await Hypervisor.open(uri!, { callTimeoutMs: 10_000 });
process.stdout.write("ready\n");
const lines = createInterface({ input: process.stdin });
await new Promise<void>((resolve) => lines.once("line", () => resolve()));
lines.close();

const started = performance.now();
const call = hv.suspend(domain!, { timeoutMs: Number(timeout) }).then(
  () => ({ outcome: "suspended" }),
  (err: unknown) =>
    err instanceof HypervisorError
      ? { outcome: err.reason, message: err.message }
      : { outcome: "error", message: String(err) },
);
if (mode === "stop") process.kill(process.pid, "SIGSTOP");
const result = await call;
process.stdout.write(`${JSON.stringify({ ...result, elapsedMs: performance.now() - started })}\n`);
// A call libvirt never answered would keep the process alive: the test is done with it.
process.exit(0);
