// The fault suite's second half, on the real guest: one fault at a time while the agent saves a
// VM snapshot's RAM (paused mode: the vCPUs paused and the filesystems frozen until the image is
// on disk, ~1 s for this 1 GiB guest with half its RAM random). Seen from the guest: the longest
// time its writer stopped (a line every 0.2 s on the serial console, stamped by the host: the
// guest's own clock stops while it is paused). For each: that stall, the final phase and reason,
// and whether a memory image or disk snapshot was left behind once the snapshot is deleted.
// The promise is the same as on the test driver (test/integration/faults/): the guest ends
// thawed and running (or its domain is gone and status says so), status ends with a reason,
// deletion leaves nothing.
import { existsSync, readdirSync } from "node:fs";
import { setTimeout as sleep } from "node:timers/promises";
import { expect } from "chai";

import type { VMSnapshot } from "../../src/api/types.ts";
import { useE2eController, type E2eController } from "../support/e2e/controller.ts";
import { lastSeq, waitForSeq } from "../support/e2e/writer.ts";
import { ConsoleWatch } from "../support/guest/console-watch.ts";
import { guestImage, launchGuest, type Guest } from "../support/guest/index.ts";
import {
  domainState,
  freezeStatus,
  useLibvirtd,
  virsh,
  type LibvirtDaemon,
} from "../support/libvirt/libvirtd.ts";
import { waitFor } from "../support/processes.ts";

const LIBVIRTD_OUTAGE_MS = 60_000;

interface Row {
  readonly fault: string;
  readonly stallMs: number;
  readonly phase: string;
  readonly reason: string;
  readonly imagesLeft: number;
  readonly guest: string;
}

interface Fault {
  readonly name: string;
  readonly label: string;
  /** Injected as the memory save starts; resolves when the fault is over. */
  inject(e2e: E2eController, guest: Guest, libvirtd: LibvirtDaemon): Promise<void>;
  readonly domainGone?: boolean;
}

const FAULTS: readonly Fault[] = [
  {
    name: "the agent SIGKILLed",
    label: "kill",
    inject: async (e2e) => {
      await e2e.killAndRestart();
    },
  },
  {
    name: "kube-apiserver restarted",
    label: "apiserver",
    inject: (e2e) => e2e.cp.restartApiserver(),
  },
  {
    name: `libvirtd stopped ${LIBVIRTD_OUTAGE_MS / 1000} s`,
    label: "libvirtd",
    async inject(_e2e, _guest, libvirtd) {
      if (libvirtd.pid === undefined) throw new Error("libvirtd was not started by this run");
      process.kill(libvirtd.pid, "SIGSTOP");
      try {
        await sleep(LIBVIRTD_OUTAGE_MS);
      } finally {
        process.kill(libvirtd.pid, "SIGCONT");
      }
    },
  },
  {
    name: "the domain destroyed",
    label: "destroyed",
    domainGone: true,
    inject: async (_e2e, guest) => {
      await virsh(["destroy", guest.name]);
    },
  },
];

describe("fault suite on the real guest: one fault while a memory save runs", function () {
  this.timeout(600_000);
  let e2e: E2eController;
  let libvirtd: LibvirtDaemon;
  const rows: Row[] = [];

  before(async function () {
    this.timeout(900_000);
    await guestImage();
    libvirtd = await useLibvirtd();
    e2e = await useE2eController();
  });
  after(() => {
    if (rows.length > 0) console.log(table(rows));
  });

  /** The memory images in the agent's folder (shared with the run's other e2e files). */
  const images = (): string[] =>
    existsSync(e2e.controller.memoryDir)
      ? readdirSync(e2e.controller.memoryDir).filter((f) => f.endsWith(".mem"))
      : [];

  for (const fault of FAULTS) {
    it(`${fault.name}: the guest ends thawed and running (or reported gone), status says how it ended, deletion leaves nothing`, async () => {
      const guest = await launchGuest({
        label: `fault-${fault.label}`,
        memoryMiB: 1024,
        dirtyMiB: 512,
        churnMiB: 8,
      });
      const watch = new ConsoleWatch(guest.consoleLog);
      try {
        await guest.waitForAgent(300_000);
        await guest.waitForReady(300_000);
        await waitForSeq(guest, "vda", lastSeq(guest, "vda") + 3);
        const name = `mem-fault-${fault.label}`;
        const before = new Set(images());
        const added = () => images().filter((f) => !before.has(f));
        let injecting: Promise<void> | undefined;
        let injectedAt = 0;
        const saving = await e2e.watchFor(
          name,
          (s) => s.status?.phase === "DisksSnapshotted",
          () => {
            injectedAt = performance.now();
            injecting = fault.inject(e2e, guest, libvirtd);
          },
        );
        const started = performance.now();
        await e2e.apply(
          name,
          { memory: true, quiesce: "Required", freezeTimeout: "30s" },
          guest.name,
        );
        await waitFor("the memory save to start", () => injecting !== undefined, 120_000, 10);
        saving.stop();
        await injecting;
        const done: VMSnapshot = await e2e.waitFinal(name);
        const st = done.status!;
        expect(["Succeeded", "Failed"], JSON.stringify(st)).to.include(st.phase);
        if (st.phase === "Failed") expect(st.error?.reason).to.be.a("string").and.not.equal("");
        if (!fault.domainGone) {
          await waitFor(
            "the guest running and thawed",
            async () =>
              (await domainState(guest.name)) === "running" &&
              (await freezeStatus(guest.name)) === "thawed",
            60_000,
            200,
          );
          await waitForSeq(guest, "vda", lastSeq(guest, "vda") + 2);
        } else {
          expect(st.phase).to.equal("Failed");
          expect(st.memory, "no image reported").to.equal(undefined);
        }
        if (st.phase === "Failed")
          expect(st.memory, "a failed attempt reports no image").to.equal(undefined);
        const stall = watch.stall(started, performance.now());
        await e2e.delete(name);
        rows.push({
          fault: fault.name,
          stallMs: fault.domainGone ? NaN : stall.maxGapMs,
          phase: st.phase!,
          reason: st.phase === "Failed" ? st.error!.reason : "—",
          imagesLeft: added().length,
          guest: fault.domainGone
            ? `destroyed (shut off: nothing left frozen); Thawed condition ${st.conditions?.find((c) => c.type === "Thawed")?.status ?? "absent"}`
            : "thawed, running",
        });
        expect(added(), "memory images left after deletion").to.deep.equal([]);
        console.log(
          `      ${fault.name} ${Math.round(injectedAt - started)} ms after apply: ${st.phase}${st.error ? ` (${st.error.reason})` : ""}; writer stalled ${stall.maxGapMs} ms at most`,
        );
      } finally {
        watch.stop();
        await guest.remove();
      }
    });
  }
});

function table(rows: readonly Row[]): string {
  return [
    "",
    "      | fault (injected as the RAM save starts) | longest writer stall seen from the guest (ms) | final phase | reason | memory images left after delete | guest |",
    "      |---|---:|---|---|---:|---|",
    ...rows.map(
      (r) =>
        `      | ${r.fault} | ${Number.isNaN(r.stallMs) ? "n/a" : r.stallMs} | ${r.phase} | ${r.reason} | ${r.imagesLeft} | ${r.guest} |`,
    ),
  ].join("\n");
}
