// The point of an out-of-process guard: the controller may die at any instant — SIGKILL of its
// whole process group included — and the guest it froze is still thawed, within about a second,
// by the guard it left behind. The controller runs as a child process here (fixtures/controller.ts)
// so the test can kill it.
import { expect } from "chai";
import { spawn, type ChildProcess } from "node:child_process";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";

import {
  useLibvirtTestHost,
  type LibvirtTestHost,
} from "../../support/libvirt/test-driver-host.ts";
import { GuardLog, hasExited } from "./guard-log.ts";
import { Guests, when } from "./frozen-domain.ts";

const CONTROLLER = fileURLToPath(new URL("./fixtures/controller.ts", import.meta.url));

interface Report {
  readonly guardPid: number;
  readonly frozen: number;
  readonly armMs: number;
}

/** Starts the stand-in controller in its own process group; resolves with its report. */
async function startController(
  host: LibvirtTestHost,
  domain: string,
  mode: "wait" | "return",
  log: GuardLog,
): Promise<{ child: ChildProcess; report: Report }> {
  const child = spawn(
    process.execPath,
    ["--import", "tsx", CONTROLLER, host.uri, domain, "60000", mode],
    // Its stderr, which the guard inherits, goes to the log file: it outlives both.
    { detached: true, stdio: ["ignore", "pipe", log.fd] },
  );
  const line = await new Promise<string>((resolve, reject) => {
    createInterface({ input: child.stdout! }).once("line", resolve);
    child.once("exit", (code) => reject(new Error(`controller exited ${code}:\n${log.text()}`)));
  });
  return { child, report: JSON.parse(line) as Report };
}

describe("thaw guard: the controller dies", function () {
  let host: LibvirtTestHost;
  let guests: Guests;
  let log: GuardLog;
  const started: number[] = [];

  before(async () => {
    host = await useLibvirtTestHost();
  });
  beforeEach(() => {
    guests = new Guests(host);
    log = new GuardLog();
  });
  afterEach(async function () {
    // Only processes this test started, by pid, and only if still there.
    for (const pid of started.splice(0)) if (!hasExited(pid)) process.kill(pid, "SIGKILL");
    await guests.cleanup();
    if (this.currentTest?.state === "failed") console.error(log.text());
    log.dispose();
  });

  it("thaws within a second when the controller's process group is SIGKILLed, then exits", async () => {
    const name = await guests.running("sigkill");
    const { child, report } = await startController(host, name, "wait", log);
    started.push(child.pid!, report.guardPid);
    expect(report.frozen).to.equal(2);
    expect(await host.isFrozen(name), "frozen by the controller").to.equal(true);

    const killedAt = Date.now();
    process.kill(-child.pid!, "SIGKILL"); // the whole group, as a container runtime might
    const guardGoneAt = await when("the guard to exit", () => hasExited(report.guardPid), 5_000);

    const [fired] = log.find("fired", { domain: name });
    expect(fired, log.text()).to.include({ cause: "orphaned", outcome: "thawed", thawed: 2 });
    const thawMs = Date.parse(fired!.time) - killedAt;
    console.log(
      `      arm ${report.armMs.toFixed(2)} ms; thawed ${thawMs} ms after SIGKILL, guard gone after ${guardGoneAt - killedAt} ms`,
    );
    expect(thawMs).to.be.below(1_000);
    expect(guardGoneAt - killedAt).to.be.below(1_500);
    expect(await host.wasFrozen(name), "nothing left frozen").to.equal(false);
  });

  it("does not keep a controller alive that ends without closing it, and thaws its guest", async () => {
    const name = await guests.running("ends");
    const { child, report } = await startController(host, name, "return", log);
    started.push(child.pid!, report.guardPid);
    const exited = await when(
      "the controller to end by itself",
      () => child.exitCode !== null || child.signalCode !== null,
      5_000,
    );
    expect(child.exitCode, log.text()).to.equal(0);
    await when("the guard to exit", () => hasExited(report.guardPid), 5_000);
    const [fired] = log.find("fired", { domain: name });
    expect(fired, log.text()).to.include({ cause: "orphaned", outcome: "thawed", thawed: 2 });
    expect(Date.parse(fired!.time) - exited).to.be.below(1_000);
    expect(await host.wasFrozen(name)).to.equal(false);
  });
});
