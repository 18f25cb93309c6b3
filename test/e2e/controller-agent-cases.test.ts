// The guest agent failing every way docs/libvirt-facts.md records, on a real QEMU guest, through
// the controller: no agent channel (libvirt 74), a freeze hook that refuses (1), an agent that
// hangs (SIGSTOP, after it had answered: libvirt would block on it), an agent that is not running
// (killed: 86 at once). Each case runs under Required (Failed, typed reason) and IfAvailable
// (Succeeded unquiesced, Quiesced=False with the reason), and the guest is never left frozen:
// its agent says "thawed" (once it answers again) and its writer never stops.
//
// Two guests: one without a channel, and one whose agent is made to misbehave on cue and well
// again (test/support/e2e/agent-control.ts), so four cases cost two boots, made at the same time.
import { expect } from "chai";
import type { QuiescePolicy, VMSnapshot } from "../../src/api/types.ts";
import { hangAgent, killAgent, setFreezeHookMode } from "../support/e2e/agent-control.ts";
import { conditionOf, useE2eController, type E2eController } from "../support/e2e/controller.ts";
import { lastSeq, waitForSeq } from "../support/e2e/writer.ts";
import { guestImage, launchGuest, sequenceGaps, type Guest } from "../support/guest/index.ts";
import { VirshError, agentCommand, freezeStatus } from "../support/libvirt/libvirtd.ts";

const BOOT_TIMEOUT_MS = 120_000;

interface PolicyOutcomes {
  readonly Required: VMSnapshot;
  readonly IfAvailable: VMSnapshot;
}

describe("VMSnapshot controller when the guest agent fails, on a real QEMU guest", function () {
  this.timeout(120_000);
  let e2e: E2eController;
  let noChannel: Guest;
  let guest: Guest;

  before(async function () {
    this.timeout(600_000);
    await guestImage();
    e2e = await useE2eController();
    [noChannel, guest] = await Promise.all([
      launchGuest({ label: "no-channel", agent: "none" }),
      launchGuest({ label: "agent" }),
    ]);
    await Promise.all([
      noChannel.waitForReady(BOOT_TIMEOUT_MS),
      guest.waitForAgent(BOOT_TIMEOUT_MS),
    ]);
    await Promise.all([waitForSeq(noChannel, "vda", 3), waitForSeq(guest, "vda", 3)]);
  });

  after(async () => {
    await noChannel?.remove();
    await guest?.remove();
  });

  /** Applies one VMSnapshot per policy at once (the controller serializes them per domain). */
  async function underBothPolicies(label: string, domain: string): Promise<PolicyOutcomes> {
    const policies: QuiescePolicy[] = ["Required", "IfAvailable"];
    const name = (p: QuiescePolicy) => `${label}-${p.toLowerCase()}`;
    await Promise.all(policies.map((p) => e2e.apply(name(p), { quiesce: p }, domain)));
    const [required, ifAvailable] = await Promise.all(policies.map((p) => e2e.waitFinal(name(p))));
    for (const s of [required!, ifAvailable!]) {
      console.log(
        `      ${s.metadata.name}: ${s.status?.phase}` +
          (s.status?.error ? ` ${s.status.error.reason}: ${s.status.error.message}` : "") +
          (s.status?.phase === "Succeeded"
            ? ` (Quiesced=${conditionOf(s, "Quiesced")?.status} ${conditionOf(s, "Quiesced")?.reason})`
            : ""),
      );
    }
    return { Required: required!, IfAvailable: ifAvailable! };
  }

  function expectFailed(s: VMSnapshot, reason: string, libvirtCode?: number) {
    expect(s.status?.phase).to.equal("Failed");
    expect(s.status?.error?.reason).to.equal(reason);
    if (libvirtCode !== undefined)
      expect(s.status?.error?.message).to.include(`libvirt error ${libvirtCode} `);
    expect(conditionOf(s, "Stalled")?.status).to.equal("True");
    expect(s.status?.disks ?? []).to.deep.equal([]);
  }

  function expectUnquiesced(s: VMSnapshot, reason: string) {
    expect(s.status?.phase).to.equal("Succeeded");
    expect(conditionOf(s, "Quiesced")).to.include({ status: "False", reason });
    expect(s.status?.frozenAt).to.equal(undefined);
    expect(s.status?.indications).to.include("Unquiesced");
    expect(s.status?.disks?.map((d) => d.target)).to.deep.equal(["vda"]);
  }

  /** The writer went on through the case: more records, none missing. */
  async function expectWriterGoesOn(g: Guest, fromSeq: number) {
    const records = (await waitForSeq(g, "vda", lastSeq(g, "vda") + 2)).filter(
      (r) => r.seq > fromSeq,
    );
    expect(sequenceGaps(records)).to.deep.equal([]);
    const longest = Math.max(...records.map((r) => r.w - r.t));
    console.log(`      longest write during the case: ${(longest * 1000).toFixed(0)} ms`);
  }

  describe("no agent channel in the domain (libvirt 74)", () => {
    it("Required: Failed GuestAgentUnavailable; IfAvailable: Succeeded with Quiesced=False NoGuestAgent", async () => {
      const from = lastSeq(noChannel, "vda");
      const s = await underBothPolicies("no-channel", noChannel.name);
      expectFailed(s.Required, "GuestAgentUnavailable");
      expect(s.Required.status?.error?.message).to.include("guest-agent channel");
      expectUnquiesced(s.IfAvailable, "NoGuestAgent");
      expect(s.IfAvailable.status?.indications).to.deep.equal([
        "Online",
        "NoGuestAgent",
        "Unquiesced",
      ]);
      // No freeze can have happened (there is no agent to do it); libvirt agrees: 74.
      const err = await agentCommand(noChannel.name, "guest-fsfreeze-status").catch((e) => e);
      expect(err).to.be.instanceOf(VirshError);
      expect((err as VirshError).libvirtCode).to.equal(74);
      await expectWriterGoesOn(noChannel, from);
      await noChannel.remove(); // frees a guest slot for whatever runs next
    });
  });

  describe("a freeze hook that fails (libvirt 1)", () => {
    it("Required: Failed QuiesceFailed; IfAvailable: Succeeded with Quiesced=False FreezeFailed; the guest stays thawed", async () => {
      const from = lastSeq(guest, "vda");
      await setFreezeHookMode(guest, "fail");
      try {
        const s = await underBothPolicies("hook-fail", guest.name);
        expectFailed(s.Required, "QuiesceFailed", 1);
        expectUnquiesced(s.IfAvailable, "FreezeFailed");
        expect(s.IfAvailable.status?.indications).to.deep.equal([
          "Online",
          "GuestAgent",
          "Unquiesced",
        ]);
      } finally {
        await setFreezeHookMode(guest, "ok");
      }
      // The hook really ran and refused, once per snapshot.
      expect(guest.console().match(/^vmsnap-hook: freeze mode=fail up=[\d.]+$/gm)).to.have.length(
        2,
      );
      expect(await freezeStatus(guest.name)).to.equal("thawed");
      await expectWriterGoesOn(guest, from);
    });
  });

  describe("an agent that hangs (SIGSTOP) after it had answered", () => {
    it("Required: Failed GuestAgentUnavailable (no answer to guest-ping, no freeze sent); IfAvailable: Succeeded with Quiesced=False NoGuestAgent; thawed after SIGCONT", async function () {
      this.timeout(180_000);
      const from = lastSeq(guest, "vda");
      // libvirt is in sync with this agent (it just answered guest-exec), so it would send a
      // freeze straight to the hung agent, with no timeout: the case the controller must avoid.
      const outage = await hangAgent(guest);
      let s: PolicyOutcomes;
      try {
        s = await underBothPolicies("hung", guest.name);
      } finally {
        await outage.end();
      }
      expectFailed(s.Required, "GuestAgentUnavailable");
      expect(s.Required.status?.error?.message).to.match(/guest-ping.*no freeze was sent/);
      expectUnquiesced(s.IfAvailable, "NoGuestAgent");
      // Answering again, the agent says nothing is frozen: no freeze was queued behind the hang.
      expect(await freezeStatus(guest.name)).to.equal("thawed");
      await expectWriterGoesOn(guest, from);
    });
  });

  describe("an agent that is not running (killed: libvirt 86 at once)", () => {
    it("Required: Failed GuestAgentUnavailable; IfAvailable: Succeeded with Quiesced=False NoGuestAgent; thawed once it runs again", async () => {
      const from = lastSeq(guest, "vda");
      const outage = await killAgent(guest);
      let s: PolicyOutcomes;
      try {
        const err = await agentCommand(guest.name, "guest-ping").catch((e) => e);
        expect((err as VirshError).libvirtCode, String(err)).to.equal(86);
        s = await underBothPolicies("agent-gone", guest.name);
      } finally {
        await outage.end();
      }
      expectFailed(s.Required, "GuestAgentUnavailable", 86);
      expectUnquiesced(s.IfAvailable, "NoGuestAgent");
      await guest.waitForAgent(30_000);
      expect(await freezeStatus(guest.name)).to.equal("thawed");
      await expectWriterGoesOn(guest, from);
    });
  });
});
