// The background-snapshot adapter's decisions against a scripted QEMU (QMP replies in order):
// when it counts RAM as captured, when it marks the image complete, and that every failure
// leaves no file. The real QEMU behaviour these scripts copy is in docs/live-memory-facts.md and
// test/e2e/background-snapshot.test.ts.
import { expect } from "chai";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

import {
  armBackgroundSnapshot,
  cancelBackgroundSnapshot,
  finishBackgroundSnapshot,
  prepareBackgroundSnapshot,
  type BackgroundSnapshotPort,
} from "../../../src/hypervisor/background-snapshot.ts";
import { HypervisorError } from "../../../src/hypervisor/errors.ts";
import { parseSaveImageHeader } from "../../../src/hypervisor/save-image-header.ts";

type Reply = unknown | ((args: Record<string, unknown> | undefined) => unknown);

/** A QEMU that answers each QMP command from its own queue (the last answer repeats). */
class ScriptedQemu {
  readonly calls: string[] = [];
  readonly fds: number[] = [];
  constructor(private readonly script: Record<string, Reply[]>) {}

  port(): BackgroundSnapshotPort {
    return {
      domainXml: async () => "<domain type='qemu'><name>vm</name></domain>",
      qmp: async (_domain, execute, args, options) => {
        this.calls.push(execute);
        if (options?.fds) this.fds.push(...options.fds);
        const queue = this.script[execute] ?? [{}];
        const next = queue.length > 1 ? queue.shift() : queue[0];
        const value = typeof next === "function" ? (next as (a: unknown) => unknown)(args) : next;
        if (value instanceof Error) throw value;
        return value;
      },
    };
  }
}

describe("background snapshot adapter (scripted QEMU)", () => {
  let dir: string;
  let file: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), "vmsnap-bg-unit-"));
    file = join(dir, "vm.mem");
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it("prepares a partial save image with the domain's XML and hands its descriptor to QEMU", async () => {
    const qemu = new ScriptedQemu({ "query-migrate": [{}] });
    await prepareBackgroundSnapshot(qemu.port(), { domain: "vm", file, timeoutMs: 1000 });
    const header = parseSaveImageHeader(readFileSync(file));
    expect(header.complete).to.equal(false);
    expect(header.xml).to.contain("<name>vm</name>");
    expect(qemu.calls).to.deep.equal(["query-migrate", "migrate-set-capabilities", "getfd"]);
    expect(qemu.fds).to.have.length(1);
  });

  it("refuses to prepare while another migration is in progress", async () => {
    const qemu = new ScriptedQemu({ "query-migrate": [{ status: "active" }] });
    const err = await prepareBackgroundSnapshot(qemu.port(), {
      domain: "vm",
      file,
      timeoutMs: 1000,
    }).catch((e: unknown) => e);
    expect(err).to.be.instanceOf(HypervisorError);
    expect(String(err)).to.match(/already active/);
    expect(existsSync(file)).to.equal(false);
  });

  it("counts RAM as captured only once QEMU itself runs the vCPUs again, not when the status says active", async () => {
    // QEMU 7.2: "active" comes before its own stop; running comes after write tracking is armed.
    const qemu = new ScriptedQemu({
      "query-status": [{ running: false }, { running: false }, { running: true }],
      "query-migrate": [{ status: "active" }],
    });
    const armed = await armBackgroundSnapshot(qemu.port(), { domain: "vm", file, timeoutMs: 1000 });
    expect(armed.resumedByQemu).to.equal(true);
    expect(qemu.calls.filter((c) => c === "query-status")).to.have.length(3);
  });

  it("removes the file, sending no migrate_cancel, when QEMU reports the snapshot failed while arming", async () => {
    writeFileSync(file, "partial");
    const qemu = new ScriptedQemu({
      "query-status": [{ running: false }],
      "query-migrate": [{ status: "failed", "error-desc": "uffd: write protect unsupported" }],
    });
    const err = await armBackgroundSnapshot(qemu.port(), {
      domain: "vm",
      file,
      timeoutMs: 1000,
    }).catch((e: unknown) => e);
    expect(String(err)).to.match(/failed: uffd: write protect unsupported/);
    expect(qemu.calls).to.not.include("migrate_cancel");
    expect(existsSync(file)).to.equal(false);
  });

  it("gives up arming at its deadline when QEMU never runs the vCPUs again (QEMU ≥ 9 keeps a paused guest paused): the arming error, the file removed, no migrate_cancel", async () => {
    writeFileSync(file, "partial");
    const qemu = new ScriptedQemu({
      "query-status": [{ running: false }],
      "query-migrate": [{ status: "active" }],
    });
    const err = await armBackgroundSnapshot(qemu.port(), {
      domain: "vm",
      file,
      timeoutMs: 30,
    }).catch((e: unknown) => e);
    expect(err).to.be.instanceOf(HypervisorError);
    expect((err as HypervisorError).reason).to.equal("Timeout");
    expect(String(err)).to.match(/not armed within 30 ms/);
    expect(qemu.calls).to.not.include("migrate_cancel");
    expect(existsSync(file)).to.equal(false);
  });

  it("abandons a write in progress by letting it finish, never by migrate_cancel (QEMU 7.2 hangs the guest on that)", async () => {
    writeFileSync(file, "partial");
    const qemu = new ScriptedQemu({
      "query-migrate": [{ status: "active" }, { status: "active" }, { status: "completed" }],
    });
    await cancelBackgroundSnapshot(qemu.port(), "vm", file, { pollMs: 1 });
    expect(qemu.calls.filter((c) => c === "query-migrate")).to.have.length(3);
    expect(qemu.calls).to.not.include("migrate_cancel");
    expect(existsSync(file)).to.equal(false);
  });

  it("stops waiting for an abandoned write at its deadline: Timeout, the file removed all the same", async () => {
    writeFileSync(file, "partial");
    const qemu = new ScriptedQemu({ "query-migrate": [{ status: "active" }] });
    const err = await cancelBackgroundSnapshot(qemu.port(), "vm", file, {
      timeoutMs: 20,
      pollMs: 1,
    }).catch((e: unknown) => e);
    expect((err as HypervisorError).reason).to.equal("Timeout");
    expect(qemu.calls).to.not.include("migrate_cancel");
    expect(existsSync(file)).to.equal(false);
  });

  it("marks the image complete only when QEMU reports the write completed", async () => {
    await prepareBackgroundSnapshot(new ScriptedQemu({ "query-migrate": [{}] }).port(), {
      domain: "vm",
      file,
      timeoutMs: 1000,
    });
    const qemu = new ScriptedQemu({
      "query-migrate": [
        { status: "active" },
        { status: "active" },
        { status: "completed", downtime: 4, "total-time": 900, "setup-time": 30 },
      ],
    });
    const image = await finishBackgroundSnapshot(qemu.port(), {
      domain: "vm",
      file,
      timeoutMs: 5000,
      pollMs: 1,
    });
    expect(parseSaveImageHeader(readFileSync(file)).complete).to.equal(true);
    expect(image).to.include({ qemuDowntimeMs: 4, qemuTotalMs: 900, qemuSetupMs: 30 });
    expect(qemu.calls.at(-1)).to.equal("migrate-set-capabilities");
  });

  it("removes the image, never marking it complete, when the write failed", async () => {
    writeFileSync(file, "partial");
    const qemu = new ScriptedQemu({ "query-migrate": [{ status: "failed" }] });
    const err = await finishBackgroundSnapshot(qemu.port(), {
      domain: "vm",
      file,
      timeoutMs: 1000,
      pollMs: 1,
    }).catch((e: unknown) => e);
    expect(err).to.be.instanceOf(HypervisorError);
    expect(existsSync(file)).to.equal(false);
  });
});
