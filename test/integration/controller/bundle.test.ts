// The controller as the image runs it: the esbuild bundle (tools/bundle.ts) under plain node,
// not src/ under tsx. Everything the bundle must still find at run time is exercised: the
// libvirt addon (walked up to from dist/bundle/), the thaw guard it spawns (dist/bundle/
// guard-main.js), the rbd CLI, and client-node's API clients and watch against the real API
// server — through a VM snapshot with memory and a deletion that removes the Ceph snapshot.
import { readFileSync } from "node:fs";
import { expect } from "chai";
import { PHASES } from "../../../src/api/types.ts";
import { bundleController, type ControllerBundle } from "../../support/controller/bundle.ts";
import { startScenario, type Scenario } from "../../support/controller/snapshot-scenario.ts";
import { childrenOf } from "../../../bench/lib/proc.ts";

describe("the bundled controller (dist/bundle/main.js under plain node)", function () {
  this.timeout(180_000);
  let bundle: ControllerBundle;
  let s: Scenario;

  before(async () => {
    bundle = await bundleController();
    s = await startScenario({ entry: bundle.main });
  });
  after(async () => {
    await s?.stop();
  });

  it("runs from the bundle and spawns the thaw guard from the bundle beside it", () => {
    const cmdline = readFileSync(`/proc/${s.controller.pid}/cmdline`, "utf8").split("\0");
    expect(cmdline).to.include(bundle.main);
    expect(cmdline.some((a) => a.includes("tsx"))).to.equal(false);
    const guards = childrenOf(s.controller.pid).filter((c) => c.cmdline.includes("guard-main"));
    expect(guards.map((g) => g.cmdline.split(" ")[1])).to.deep.equal([bundle.guardMain]);
  });

  it("takes a VM snapshot with memory through every phase, then deletes its Ceph snapshot", async () => {
    const domain = await s.newDomain({ rbdDisks: 2 });
    const watcher = await s.watchPhases("bundled");
    await s.apply("bundled", { memory: true, deletionPolicy: "Delete" }, domain.name);
    const done = await s.waitFinal("bundled");
    await watcher.stopAfter(done.status!.phase!);
    expect(watcher.phases).to.deep.equal(PHASES.filter((p) => p !== "Failed"));
    expect(await s.groupSnapshots(domain.name)).to.deep.equal([`vmsnap-${done.metadata.uid}`]);
    expect(await s.host.isFrozen(domain.name)).to.equal(false);

    await s.delete("bundled");
    expect(await s.groupSnapshots(domain.name)).to.deep.equal([]);
  });

  it("serves its metrics with the vmsnap series", async () => {
    const text = await (await fetch(`http://127.0.0.1:${s.controller.metricsPort}/metrics`)).text();
    expect(text).to.match(/^vmsnap_snapshots_total\{/m);
    expect(text).to.match(/^controller_runtime_reconcile_total\{/m);
  });
});
