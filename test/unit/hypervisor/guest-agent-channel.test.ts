// The guest-agent channel is found by its virtio target name, wherever it sits among channels.
import { expect } from "chai";
import { hasGuestAgentChannel } from "../../../src/hypervisor/guest-agent-channel.ts";

const domain = (devices: string) =>
  `<domain type='qemu'><name>vm</name><devices>${devices}</devices></domain>`;

describe("guest-agent channel detection", () => {
  it("finds org.qemu.guest_agent.0 on a virtio channel", () => {
    const xml = domain(
      `<channel type='unix'><source mode='bind'/><target type='virtio' name='org.qemu.guest_agent.0'/></channel>`,
    );
    expect(hasGuestAgentChannel(xml)).to.equal(true);
  });

  it("finds it among other channels", () => {
    const xml = domain(
      `<channel type='spicevmc'><target type='virtio' name='com.redhat.spice.0'/></channel>` +
        `<channel type='unix'><target type='virtio' name='org.qemu.guest_agent.0'/></channel>`,
    );
    expect(hasGuestAgentChannel(xml)).to.equal(true);
  });

  it("is false without channels, or with only other channels", () => {
    expect(hasGuestAgentChannel(domain(""))).to.equal(false);
    expect(
      hasGuestAgentChannel(
        domain(
          `<channel type='spicevmc'><target type='virtio' name='com.redhat.spice.0'/></channel>`,
        ),
      ),
    ).to.equal(false);
  });

  it("is false for a guestfwd channel that happens to carry the name", () => {
    expect(
      hasGuestAgentChannel(
        domain(
          `<channel type='unix'><target type='guestfwd' name='org.qemu.guest_agent.0'/></channel>`,
        ),
      ),
    ).to.equal(false);
  });
});
