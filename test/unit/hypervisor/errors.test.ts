// The libvirt error contract (docs/libvirt-facts.md): numeric code + error domain + operation →
// typed reason.
// Each row is a situation measured on libvirt 9.0 or the test driver; message text plays no part.
import { expect } from "chai";

import { ErrorDomain } from "../../../src/hypervisor/error-codes.ts";
import {
  classify,
  describeHypervisorError,
  HypervisorError,
  outcomeUnknown,
  toHypervisorError,
  type ClassifyContext,
  type HypervisorErrorReason,
} from "../../../src/hypervisor/errors.ts";

const { Qemu, Test, Domain, Rpc, Remote, None } = ErrorDomain;

type Row = [
  situation: string,
  code: number,
  domain: number,
  context: ClassifyContext,
  reason: HypervisorErrorReason,
];

const table: Row[] = [
  ["no such domain (qemu)", 42, Qemu, { operation: "domainInfo" }, "DomainNotFound"],
  ["no such domain (test driver)", 42, Test, { operation: "fsFreeze" }, "DomainNotFound"],
  ["freeze of a shut-off domain", 55, Qemu, { operation: "fsFreeze" }, "DomainNotRunning"],
  ["suspend of a shut-off domain", 55, Test, { operation: "suspend" }, "DomainNotRunning"],
  [
    "freeze without an agent channel",
    74,
    Qemu,
    { operation: "fsFreeze" },
    "GuestAgentNotConfigured",
  ],
  [
    "agent command without a channel",
    74,
    Qemu,
    { operation: "freezeStatus" },
    "GuestAgentNotConfigured",
  ],
  ["thaw with mountpoints", 74, Qemu, { operation: "fsThaw" }, "Unsupported"],
  ["74 outside the agent calls", 74, Qemu, { operation: "createSnapshot" }, "Unsupported"],
  [
    "agent not connected or hung before sync",
    86,
    Qemu,
    { operation: "fsFreeze" },
    "GuestAgentUnresponsive",
  ],
  ["agent replies out of sync", 97, Qemu, { operation: "guestPing" }, "GuestAgentUnresponsive"],
  [
    "freeze hook failed (agent says thawed)",
    1,
    Qemu,
    { operation: "fsFreeze", guestFrozen: false },
    "QuiesceHookFailed",
  ],
  [
    "freeze while frozen (agent says frozen)",
    1,
    Qemu,
    { operation: "fsFreeze", guestFrozen: true },
    "AlreadyFrozen",
  ],
  ["freeze failed, agent status unknown", 1, Qemu, { operation: "fsFreeze" }, "QuiesceHookFailed"],
  ["internal error outside freeze", 1, Qemu, { operation: "resume" }, "Unknown"],
  [
    "driver lacks the API (qemuAgentCommand on test)",
    3,
    None,
    { operation: "guestPing" },
    "Unsupported",
  ],
  [
    "driver lacks the API (agent timeout on test)",
    3,
    Domain,
    { operation: "setAgentResponseTimeout" },
    "Unsupported",
  ],
  ["revert to an external snapshot", 67, Qemu, { operation: "createSnapshot" }, "Unsupported"],
  ["operation unsupported", 84, Qemu, { operation: "save" }, "Unsupported"],
  [
    "DISK_ONLY refused by the test driver (0x10)",
    8,
    Test,
    { operation: "createSnapshot" },
    "Unsupported",
  ],
  ["QUIESCE without DISK_ONLY", 8, Qemu, { operation: "createSnapshot" }, "Unsupported"],
  ["save flags refused", 8, Test, { operation: "save" }, "Unsupported"],
  ["invalid argument elsewhere", 8, Qemu, { operation: "domainXml" }, "InvalidArgument"],
  ["no such snapshot", 72, Test, { operation: "deleteSnapshot" }, "SnapshotNotFound"],
  ["libvirt job timeout", 68, Qemu, { operation: "suspend" }, "Timeout"],
  ["socket EOF while opening", 38, Rpc, { operation: "open" }, "ConnectionLost"],
  ["cannot connect", 5, Remote, { operation: "open" }, "ConnectionLost"],
  ["closed connection object", 6, None, { operation: "fsThaw" }, "ConnectionLost"],
  ["RPC failure on a call", 39, Rpc, { operation: "fsThaw" }, "ConnectionLost"],
  ["system error outside the transport", 38, Qemu, { operation: "save" }, "Unknown"],
  [
    "any code on a connection found dead",
    42,
    Qemu,
    { operation: "domainInfo", connectionAlive: false },
    "ConnectionLost",
  ],
  ["an error number vmsnap doesn't know", 9999, Qemu, { operation: "suspend" }, "Unknown"],
];

describe("libvirt error classification", () => {
  for (const [situation, code, domain, context, reason] of table) {
    it(`${situation}: code ${code}, domain ${domain} → ${reason}`, () => {
      expect(classify(code, domain, context)).to.equal(reason);
    });
  }

  it("ignores the message text entirely", () => {
    const frozen = Object.assign(new Error("agent is in frozen state"), {
      code: 1,
      domain: Qemu,
      connectionAlive: true,
    });
    expect(toHypervisorError(frozen, "resume").reason).to.equal("Unknown");
  });
});

describe("HypervisorError", () => {
  it("carries libvirt's code and domain, the operation, the VM and the typed reason", () => {
    const native = Object.assign(new Error("Domain not found"), {
      code: 42,
      domain: Test,
      connectionAlive: true,
    });
    const err = toHypervisorError(native, "fsFreeze", "web-1");
    expect(err).to.be.instanceOf(HypervisorError).and.instanceOf(Error);
    expect(err).to.include({
      reason: "DomainNotFound",
      code: 42,
      domain: Test,
      operation: "fsFreeze",
      target: "web-1",
    });
    expect(err.message).to.equal("fsFreeze(web-1): Domain not found");
    expect(err.cause).to.equal(native);
  });

  it("marks errors that did not come from libvirt with code and domain -1", () => {
    const err = toHypervisorError(new TypeError("boom"), "domainXml", "vm");
    expect(err).to.include({ reason: "Unknown", code: -1, domain: -1 });
  });

  it("re-labels with a reason learnt later, keeping everything else", () => {
    const first = new HypervisorError("fsFreeze(vm): failed", {
      reason: "QuiesceHookFailed",
      operation: "fsFreeze",
      code: 1,
      domain: Qemu,
      target: "vm",
    });
    const second = first.withReason("AlreadyFrozen");
    expect(second).to.include({
      reason: "AlreadyFrozen",
      code: 1,
      domain: Qemu,
      operation: "fsFreeze",
      target: "vm",
      message: first.message,
    });
    expect(first.reason).to.equal("QuiesceHookFailed");
  });
});

describe("a deadline that passed: libvirt's or ours", () => {
  const ours = (reason: HypervisorErrorReason) =>
    new HypervisorError("suspend(vm): no answer within 300 ms", {
      reason,
      operation: "suspend",
      target: "vm",
    });

  it("leaves the outcome unknown both when libvirt did not answer and when this process stalled", () => {
    expect(outcomeUnknown(ours("Timeout"))).to.equal(true);
    expect(outcomeUnknown(ours("ProcessStalled"))).to.equal(true);
    expect(outcomeUnknown(ours("DomainNotFound"))).to.equal(false);
    expect(outcomeUnknown(new Error("Timeout"))).to.equal(false);
  });

  it("never words a stall of this process as a libvirt error", () => {
    expect(describeHypervisorError(ours("Timeout"))).to.match(/^libvirt error -1 \(Timeout\): /);
    expect(describeHypervisorError(ours("ProcessStalled")))
      .to.match(/^this process stalled, not libvirt \(ProcessStalled\): /)
      .and.not.match(/libvirt error/);
  });
});
