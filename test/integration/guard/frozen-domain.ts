// Guests for the guard tests: running domains on the daemon-hosted test driver, frozen (and
// paused when asked) through the test's own connection, destroyed again by `cleanup`.
import { expect } from "chai";
import { setTimeout as sleep } from "node:timers/promises";

import {
  testDomainXml,
  uniqueTestDomainName,
  type LibvirtTestHost,
} from "../../support/libvirt/test-driver-host.ts";

export class Guests {
  private readonly names: string[] = [];

  constructor(private readonly host: LibvirtTestHost) {}

  /** A running domain with two RBD disks and an agent channel, not frozen. */
  async running(label: string): Promise<string> {
    const name = uniqueTestDomainName(label);
    await this.host.defineRunningDomain(
      name,
      testDomainXml({ name, rbdDisks: 2, guestAgent: true }),
    );
    this.names.push(name);
    return name;
  }

  /** A running domain, frozen now (and then paused, when asked). */
  async frozen(label: string, options: { paused?: boolean } = {}): Promise<string> {
    const name = await this.running(label);
    const hv = this.host.hypervisor();
    expect(await hv.fsFreeze(name), "filesystems frozen").to.equal(2);
    if (options.paused) await hv.suspend(name);
    return name;
  }

  async cleanup(): Promise<void> {
    for (const name of this.names.splice(0)) await this.host.destroyDomain(name);
  }
}

/** Polls `probe` every few ms; resolves with Date.now() when it first holds. */
export async function when(
  what: string,
  probe: () => Promise<boolean> | boolean,
  timeoutMs: number,
): Promise<number> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await probe()) return Date.now();
    if (Date.now() > deadline)
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(5);
  }
}

/** Sleeps until the epoch-ms instant `at`. */
export async function until(at: number): Promise<void> {
  const ms = at - Date.now();
  if (ms > 0) await sleep(ms);
}
