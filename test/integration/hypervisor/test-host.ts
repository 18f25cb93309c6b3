// The libvirt test-driver host the hypervisor integration tests run against: an in-process
// fake hypervisor (no daemon), fresh state per connection, declared in test/fixtures/libvirt/.
import { fileURLToPath } from "node:url";

import { Hypervisor, type HypervisorOptions } from "../../../src/hypervisor/connection.ts";

export const TEST_NODE_XML = fileURLToPath(
  new URL("../../fixtures/libvirt/test-node.xml", import.meta.url),
);
/** Three slashes then the absolute path: `test:///work/...`. */
export const TEST_URI = `test://${TEST_NODE_XML}`;

export const RUNNING = "vmsnap-running";
export const SHUTOFF = "vmsnap-shutoff";

/** A Hypervisor on a fresh copy of the test host. */
export function openTestHost(options: HypervisorOptions = {}): Promise<Hypervisor> {
  return Hypervisor.open(TEST_URI, options);
}
