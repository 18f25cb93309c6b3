// The controller (src/main.ts, a real process on the real control plane and Ceph) with its thaw
// guard as a sidecar, as the DaemonSet runs them: `--guard-socket` instead of a spawned child.
// SIGKILLed while a guest is frozen, the controller leaves the guest to the sidecar, which
// thaws it as soon as the connection closes — well inside freezeTimeout + 1 s — and goes on
// serving the controller that replaces it.
import { expect } from "chai";
import { setTimeout as sleep } from "node:timers/promises";

import { useLibvirtTestHost } from "../../support/libvirt/test-driver-host.ts";
import { waitFor } from "../../support/processes.ts";
import { startScenario, type Scenario } from "../../support/controller/snapshot-scenario.ts";
import { GuardLog, hasExited } from "./guard-log.ts";
import { SocketDir, startSidecarGuard, type SidecarGuard } from "./sidecar-guard.ts";

const FREEZE_TIMEOUT_MS = 5_000;
// Longer than the freeze window: a stalled disk step cannot end the freeze before the kill does.
const CEPH_OP_TIMEOUT_SECONDS = 10;

describe("controller with a sidecar thaw guard", function () {
  this.timeout(240_000);
  let s: Scenario;
  let log: GuardLog;
  let dir: SocketDir;
  let guard: SidecarGuard;
  const controllerOptions = () => ({
    cephOpTimeoutSeconds: CEPH_OP_TIMEOUT_SECONDS,
    extraArgs: ["--guard-socket", dir.socketPath],
  });

  before(async () => {
    const host = await useLibvirtTestHost();
    log = new GuardLog();
    dir = new SocketDir();
    guard = await startSidecarGuard(host.uri, dir.socketPath, log);
    s = await startScenario(controllerOptions());
  });
  after(async function () {
    s?.ceph.resumeOsd();
    await s?.stop();
    guard?.kill("SIGTERM");
    await guard?.exited;
    if (this.currentTest?.state === "failed") console.error(log.text());
    log?.dispose();
    dir?.dispose();
  });

  it("SIGKILL while frozen: the sidecar thaws at once, well within freezeTimeout + 1 s, and serves the next controller", async () => {
    const domain = await s.newDomain({ rbdDisks: 2, label: "sidecar" });
    const name = "sidecar-kill";
    // The disk step hangs on a stopped OSD, so the guest is still frozen when the kill comes.
    const stall = await s.watchFor(
      name,
      (o) => o.status?.freezeDeadline !== undefined,
      () => s.ceph.pauseOsd(),
    );
    const frozen = await s.watchFor(name, (o) => o.status?.phase === "Frozen");
    let killedAt: number;
    let frozenAt: number;
    try {
      await s.apply(name, { freezeTimeout: `${FREEZE_TIMEOUT_MS / 1000}s` }, domain.name);
      const seen = await frozen.seen;
      frozenAt = Date.parse(seen.status!.frozenAt!);
      await sleep(300);
      expect(await s.host.isFrozen(domain.name), "frozen when the controller dies").to.equal(true);
      killedAt = Date.now();
      s.controller.kill("SIGKILL");
      await waitFor(
        `${domain.name} to be thawed`,
        async () => !(await s.host.isFrozen(domain.name)),
        FREEZE_TIMEOUT_MS + 2_000,
        20,
      );
    } finally {
      stall.stop();
      frozen.stop();
      s.ceph.resumeOsd();
    }
    const thawedAt = Date.now();
    // The guard logs after it thawed: its line may trail what libvirt shows.
    await waitFor(
      "the guard's log",
      () => log.find("fired", { domain: domain.name }).length > 0,
      2_000,
      20,
    );
    const uid = (await s.get(name)).metadata.uid!;
    expect(
      log.find("armed", { id: uid }),
      "the controller armed through the sidecar",
    ).to.have.length(1);
    const [fired] = log.find("fired", { domain: domain.name });
    expect(fired, log.text()).to.include({ id: uid, cause: "orphaned", outcome: "thawed" });
    console.log(
      `      sidecar thawed ${Date.parse(fired!.time) - killedAt} ms after SIGKILL; ` +
        `frozen window ${thawedAt - frozenAt} ms (seen thawed ${thawedAt - killedAt} ms after the kill)`,
    );
    expect(thawedAt - frozenAt, "frozen window").to.be.at.most(FREEZE_TIMEOUT_MS + 1_000);
    // Well before the deadline: the connection closing, not the deadline, set it off.
    expect(Date.parse(fired!.time) - killedAt, "thaw after the kill").to.be.below(1_000);
    expect(await s.host.domainState(domain.name)).to.equal("running");
    expect(hasExited(guard.pid), "the sidecar lives on").to.equal(false);

    // The next controller connects to the same sidecar, settles the interrupted attempt, and
    // takes a snapshot of its own through it.
    await s.startController(controllerOptions());
    const done = await s.waitFinal(name, 90_000);
    expect(["Succeeded", "Failed"]).to.include(done.status?.phase);
    if (done.status?.phase === "Failed")
      expect(done.status.error?.reason).to.be.a("string").and.have.length.above(0);
    await s.apply("sidecar-next", { freezeTimeout: "10s" }, domain.name);
    const next = await s.waitFinal("sidecar-next", 90_000);
    expect(next.status?.phase, JSON.stringify(next.status)).to.equal("Succeeded");
    const nextUid = next.metadata.uid!;
    expect(log.find("armed", { id: nextUid })).to.have.length(1);
    expect(log.find("disarmed", { id: nextUid })[0]).to.include({ wasArmed: true });
    expect(await s.host.isFrozen(domain.name)).to.equal(false);
    expect(log.find("client connected")).to.have.length(2);
  });

  it("the sidecar gone: the controller never freezes without it, waits, then lets the policy decide", async () => {
    const domain = await s.newDomain({ rbdDisks: 1, label: "noguard" });
    guard.kill("SIGKILL");
    await guard.exited;
    const waiting = await s.watchFor("guard-away", (o) =>
      (o.status?.conditions ?? []).some(
        (c) => c.type === "Reconciling" && c.reason === "WaitingForThawGuard",
      ),
    );
    try {
      await s.apply("guard-away", { quiesce: "Required", freezeTimeout: "2s" }, domain.name);
      await waiting.seen;
      const done = await s.waitFinal("guard-away", 60_000);
      expect(done.status?.phase).to.equal("Failed");
      expect(done.status?.error?.reason).to.equal("QuiesceFailed");
      expect(done.status?.error?.message).to.include("thaw guard");
      expect(done.status?.frozenAt, "never frozen").to.equal(undefined);
      expect(await s.host.isFrozen(domain.name)).to.equal(false);
    } finally {
      waiting.stop();
      guard = await startSidecarGuard(s.host.uri, dir.socketPath, log);
    }
    // Back: the controller reconnects and freezes again.
    await s.apply("guard-back", { freezeTimeout: "10s" }, domain.name);
    const back = await s.waitFinal("guard-back", 60_000);
    expect(back.status?.phase, JSON.stringify(back.status?.error)).to.equal("Succeeded");
    expect(back.status?.frozenAt).to.be.a("string");
  });

  it("the controller and its guard killed together: the next controller thaws the leftover first, guard or no guard", async () => {
    const domain = await s.newDomain({ rbdDisks: 2, label: "both-gone" });
    const name = "both-killed";
    const stall = await s.watchFor(
      name,
      (o) => o.status?.freezeDeadline !== undefined,
      () => s.ceph.pauseOsd(),
    );
    const frozen = await s.watchFor(name, (o) => o.status?.phase === "Frozen");
    let next: Promise<unknown> | undefined;
    try {
      await s.apply(name, { freezeTimeout: "3s" }, domain.name);
      await frozen.seen;
      // Both at once, as when a pod's containers die together: nobody is left to thaw it.
      guard.kill("SIGKILL");
      s.controller.kill("SIGKILL");
      await guard.exited;
      s.ceph.resumeOsd();
      expect(await s.host.isFrozen(domain.name), "frozen with both gone").to.equal(true);
      // The next controller comes up while the guard is still away; it waits for the guard to be
      // ready, but the guest must not wait with it.
      const startedAt = Date.now();
      next = s.startController(controllerOptions());
      next.catch(() => undefined);
      await waitFor(
        `${domain.name} to be thawed by the new controller without a guard`,
        async () => !(await s.host.isFrozen(domain.name)),
        15_000,
        50,
      );
      console.log(
        `      the guest thawed ${Date.now() - startedAt} ms after the new controller was started, its guard still down`,
      );
      expect(hasExited(guard.pid), "the guard is still down").to.equal(true);
    } finally {
      stall.stop();
      frozen.stop();
      s.ceph.resumeOsd();
      guard = await startSidecarGuard(s.host.uri, dir.socketPath, log);
      await next;
    }
    const done = await s.waitFinal(name, 90_000);
    expect(done.status?.phase, "the interrupted attempt ends failed").to.equal("Failed");
    expect(await s.host.isFrozen(domain.name)).to.equal(false);
    expect(await s.host.domainState(domain.name)).to.equal("running");
  });
});
