// The daemon-hosted test driver the guard tests stand on: its whole point is domain state that
// every process and connection sees alike, so that is what is checked here, together with the
// domains it builds and its freeze probes.
import { expect } from "chai";
import { execFile, spawn } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";

import { Hypervisor, parseDisks } from "../../../src/hypervisor/index.ts";
import {
  testDomainXml,
  uniqueTestDomainName,
  useLibvirtTestHost,
  type LibvirtTestHost,
} from "../../support/libvirt/test-driver-host.ts";
import { virsh } from "../../support/libvirt/virsh.ts";
import { hasExited } from "./guard-log.ts";
import { when } from "./frozen-domain.ts";

const HOST_USER = fileURLToPath(new URL("./fixtures/test-host-user.ts", import.meta.url));

describe("libvirt test host (daemon-hosted test driver)", () => {
  let host: LibvirtTestHost;
  const names: string[] = [];

  before(async () => {
    host = await useLibvirtTestHost();
  });
  afterEach(async () => {
    for (const name of names.splice(0)) await host.destroyDomain(name);
  });

  async function running(
    label: string,
    xml = (name: string) => testDomainXml({ name, rbdDisks: 1 }),
  ) {
    const name = uniqueTestDomainName(label);
    await host.defineRunningDomain(name, xml(name));
    names.push(name);
    return name;
  }

  it("keeps a domain created by a short-lived client (virsh) running", async () => {
    const name = await running("transient");
    expect(await host.domainState(name)).to.equal("running");
    expect((await virsh(["domstate", name], { uri: host.uri })).trim()).to.equal("running");
  });

  it("shows a freeze made on another, since closed, connection", async () => {
    const name = await running("shared-freeze");
    const other = await Hypervisor.open(host.uri);
    expect(await other.fsFreeze(name)).to.equal(2);
    await other.close();
    expect(await host.isFrozen(name)).to.equal(true);
    expect(await host.wasFrozen(name)).to.equal(true);
  });

  it("shows vCPUs paused by another process", async () => {
    const name = await running("shared-pause");
    await virsh(["suspend", name], { uri: host.uri });
    expect(await host.domainState(name)).to.equal("paused");
    await virsh(["resume", name], { uri: host.uri });
    expect(await host.domainState(name)).to.equal("running");
  });

  it("probes: isFrozen leaves the guest as it was, wasFrozen thaws it", async () => {
    const name = await running("probes");
    expect(await host.isFrozen(name)).to.equal(false);
    expect(await host.isFrozen(name), "the probe did not leave it frozen").to.equal(false);
    await host.hypervisor().fsFreeze(name);
    expect(await host.isFrozen(name)).to.equal(true);
    expect(await host.isFrozen(name), "the probe did not thaw it").to.equal(true);
    expect(await host.wasFrozen(name)).to.equal(true);
    expect(await host.wasFrozen(name)).to.equal(false);
  });

  it("says 'unknown' for a domain that is not there, and destroys quietly what is gone", async () => {
    const name = uniqueTestDomainName("absent");
    expect(await host.domainState(name)).to.equal("unknown");
    await host.destroyDomain(name);
  });

  it("builds qemu domains with RBD disks, a file disk and an agent channel", async () => {
    const name = await running("builder", (n) =>
      testDomainXml({
        name: n,
        rbdDisks: ["vms/a", "rbd/b"],
        monitor: { host: "127.0.0.1", port: 3300 },
        fileDisk: "/var/lib/vmsnap-test/c.qcow2",
        guestAgent: true,
      }),
    );
    const xml = await host.hypervisor().domainXml(name);
    expect(xml).to.match(/<domain type='qemu'/);
    expect(xml).to.match(
      /<channel type='unix'>\s*<target type='virtio' name='org.qemu.guest_agent.0'/,
    );
    const disks = parseDisks(xml).map((d) => [d.target, d.plan]);
    expect(disks).to.deep.equal([
      [
        "vda",
        {
          backend: "rbd",
          rbd: { pool: "vms", image: "a", monitors: [{ host: "127.0.0.1", port: 3300 }] },
        },
      ],
      [
        "vdb",
        {
          backend: "rbd",
          rbd: { pool: "rbd", image: "b", monitors: [{ host: "127.0.0.1", port: 3300 }] },
        },
      ],
      [
        "vdc",
        {
          backend: "libvirt-file",
          file: { path: "/var/lib/vmsnap-test/c.qcow2", format: "qcow2" },
        },
      ],
    ]);
  });

  it("names a counted domain's images after the domain, and leaves out the agent unless asked", () => {
    const xml = testDomainXml({ name: "n1", rbdDisks: 2 });
    expect(xml).to.include("name='vms/n1-disk0'").and.include("name='vms/n1-disk1'");
    expect(xml).to.include("dev='vdb'").and.not.include("dev='vdc'");
    expect(xml).not.to.include("guest_agent");
  });

  it("stops the daemon of a test process that died, when the next one starts", async () => {
    const crashed = spawn(process.execPath, ["--import", "tsx", HOST_USER, "wait"], {
      stdio: ["ignore", "pipe", "inherit"],
    });
    const { runDir } = JSON.parse(
      await new Promise<string>((resolve) =>
        createInterface({ input: crashed.stdout! }).once("line", resolve),
      ),
    ) as { runDir: string };
    const [pidText] = readFileSync(join(runDir, "session-libvirtd.pid"), "utf8").split("\n");
    const daemonPid = Number(pidText);
    const [innerText] = readFileSync(join(runDir, "session-libvirtd-inner.pid"), "utf8").split(
      "\n",
    );
    const libvirtdPid = Number(innerText);
    expect(hasExited(daemonPid), "its daemon runs").to.equal(false);
    expect(hasExited(libvirtdPid), "its libvirtd runs").to.equal(false);
    crashed.kill("SIGKILL");
    await when(
      "the crashed run to be gone",
      () => crashed.exitCode !== null || crashed.signalCode !== null,
      5_000,
    );
    expect(hasExited(daemonPid), "a crash leaves the daemon behind").to.equal(false);

    await promisify(execFile)(process.execPath, ["--import", "tsx", HOST_USER, "end"]);
    expect(hasExited(daemonPid), "the next run stopped it").to.equal(true);
    expect(hasExited(libvirtdPid), "libvirtd too").to.equal(true);
    expect(existsSync(runDir), "and removed its folder").to.equal(false);
    expect(await host.domainState("test"), "our own daemon is untouched").to.equal("running");
  });
});
