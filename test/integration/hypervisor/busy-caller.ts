// A libvirt caller as busy as the controller: rounds of `concurrency` calls at once (several
// snapshots' look-ups, freezes and thaws), each with a 1 s deadline, on one Hypervisor opened
// as src/agent.ts opens it. On SIGUSR1 it prints one JSON line, how its calls ended by reason
// and how many succeeded since the last report, and goes on. A crash shows as its exit signal.
// Run with `node --import tsx busy-caller.ts <uri> <domain> <concurrency>`.
import { Hypervisor } from "../../../src/hypervisor/connection.ts";
import { HypervisorError } from "../../../src/hypervisor/errors.ts";

const [uri, domain, concurrency] = process.argv.slice(2);
const hv = await Hypervisor.open(uri!, { callTimeoutMs: 1_000 });
const outcomes: Record<string, number> = {};
let okSinceReport = 0;
process.on("SIGUSR1", () => {
  process.stdout.write(`${JSON.stringify({ outcomes, okSinceReport })}\n`);
  okSinceReport = 0;
});
process.stdout.write("ready\n");
for (;;) {
  await Promise.all(
    Array.from({ length: Number(concurrency) }, () =>
      hv.domainInfo(domain!, { timeoutMs: 1_000 }).then(
        () => {
          okSinceReport++;
          return "ok";
        },
        (err: unknown) => (err instanceof HypervisorError ? err.reason : "error"),
      ),
    ),
  ).then((results) => {
    for (const r of results) outcomes[r] = (outcomes[r] ?? 0) + 1;
  });
  await new Promise((resolve) => setTimeout(resolve, 200));
}
