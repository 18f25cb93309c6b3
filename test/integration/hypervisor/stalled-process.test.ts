// A deadline that passes while the calling process is stopped is not libvirt's timeout (issue 12,
// hole 12): a controller stopped during `suspend` used to end `libvirt error -1 (Timeout)` although
// libvirt had answered. Real parts: the daemon-hosted libvirt test driver, and a caller process
// (stalled-caller.ts) really stopped with SIGSTOP, its addon threads included, across its deadline.
import { expect } from "chai";
import { spawn, type ChildProcessWithoutNullStreams } from "node:child_process";
import { readFileSync } from "node:fs";
import { setTimeout as sleep } from "node:timers/promises";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";

import { STALL_GRACE_MS } from "../../../src/hypervisor/deadline.ts";
import {
  testDomainXml,
  uniqueTestDomainName,
  useLibvirtTestHost,
  type LibvirtTestHost,
} from "../../support/libvirt/test-driver-host.ts";

const CALLER = fileURLToPath(new URL("./stalled-caller.ts", import.meta.url));
const DEADLINE_MS = 300;
const STOPPED_MS = 2_000;

interface Outcome {
  readonly outcome: string;
  readonly message?: string;
  readonly elapsedMs: number;
}

/** The process state letter from /proc: `T` while stopped. */
function state(pid: number): string {
  return readFileSync(`/proc/${pid}/stat`, "utf8").replace(/^.*\) /s, "")[0]!;
}

describe("a deadline that passes while the caller is stopped (SIGSTOP)", function () {
  this.timeout(60_000);
  let host: LibvirtTestHost;
  const names: string[] = [];
  const children: ChildProcessWithoutNullStreams[] = [];

  before(async () => {
    host = await useLibvirtTestHost();
  });
  afterEach(async () => {
    host.continueLibvirtd();
    for (const child of children.splice(0)) {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill("SIGCONT");
        child.kill("SIGKILL");
      }
    }
    for (const name of names.splice(0)) await host.destroyDomain(name);
  });

  async function runningDomain(label: string): Promise<string> {
    const name = uniqueTestDomainName(label);
    await host.defineRunningDomain(name, testDomainXml({ name, rbdDisks: 1, guestAgent: true }));
    names.push(name);
    return name;
  }

  /**
   * Starts a caller on `domain`; `beforeGo` runs once its connection is open. With `stop`, the
   * caller stops itself right after starting `suspend` and is continued STOPPED_MS later.
   */
  async function call(
    domain: string,
    o: { stop: boolean; beforeGo?: () => void },
  ): Promise<Outcome> {
    const child = spawn(
      process.execPath,
      ["--import", "tsx", CALLER, host.uri, domain, String(DEADLINE_MS), o.stop ? "stop" : "run"],
      { stdio: ["pipe", "pipe", "pipe"] },
    );
    children.push(child);
    let stderr = "";
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    const lines = createInterface({ input: child.stdout })[Symbol.asyncIterator]();
    const next = async () => {
      const line = await lines.next();
      if (line.done) throw new Error(`the caller ended early: ${stderr}`);
      return line.value;
    };
    expect(await next()).to.equal("ready");
    o.beforeGo?.();
    child.stdin.write("go\n");
    if (o.stop) {
      const by = Date.now() + 10_000;
      while (state(child.pid!) !== "T") {
        if (Date.now() > by) throw new Error(`the caller never stopped: ${stderr}`);
        await sleep(5);
      }
      await sleep(STOPPED_MS);
      child.kill("SIGCONT");
    }
    return JSON.parse(await next()) as Outcome;
  }

  it("libvirt answers while the caller is stopped past its deadline: the suspend succeeded, and says so", async () => {
    const domain = await runningDomain("stalled-answered");
    const result = await call(domain, { stop: true });
    expect(result.outcome, result.message).to.equal("suspended");
    expect(result.elapsedMs).to.be.at.least(STOPPED_MS);
    expect(await host.domainState(domain), "libvirt did suspend it").to.equal("paused");
  });

  it("no answer either (libvirtd stopped too): ProcessStalled after a short grace, not libvirt's Timeout", async () => {
    const domain = await runningDomain("stalled-silent");
    const result = await call(domain, { stop: true, beforeGo: () => host.stopLibvirtd() });
    host.continueLibvirtd();
    expect(result.outcome, result.message).to.equal("ProcessStalled");
    expect(result.message).to.match(/this process was not running for \d+ ms/);
    expect(result.elapsedMs).to.be.within(STOPPED_MS, STOPPED_MS + STALL_GRACE_MS + 1_500);
  });

  it("for contrast: a caller that keeps running while libvirtd is stopped ends with Timeout at its deadline", async () => {
    const domain = await runningDomain("running-silent");
    const result = await call(domain, { stop: false, beforeGo: () => host.stopLibvirtd() });
    host.continueLibvirtd();
    expect(result.outcome, result.message).to.equal("Timeout");
    // Node's timers count whole milliseconds: one may fire a fraction of one early.
    expect(result.elapsedMs).to.be.within(DEADLINE_MS - 5, DEADLINE_MS + 1_000);
  });
});
