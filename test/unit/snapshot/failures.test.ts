// Adapter errors as the reasons users see: a stall of the controller's own process is told
// apart from libvirt's failures, for snapshots and restores alike.
import { expect } from "chai";

import { FailureReason } from "../../../src/api/reasons.ts";
import { RestoreFailureReason } from "../../../src/api/restore-types.ts";
import { HypervisorError } from "../../../src/hypervisor/errors.ts";
import { restoreFailureFrom } from "../../../src/restore/failures.ts";
import { failureFrom } from "../../../src/snapshot/failures.ts";

const stalled = new HypervisorError(
  "suspend(vm): no answer within 300 ms, but this process was not running for 2000 ms",
  { reason: "ProcessStalled", operation: "suspend", target: "vm" },
);
const timedOut = new HypervisorError("suspend(vm): no answer within 300 ms", {
  reason: "Timeout",
  operation: "suspend",
  target: "vm",
});

describe("failure reasons from adapter errors", () => {
  it("a deadline passed while the controller did not run: ControllerStalled, not HypervisorError", () => {
    const failure = failureFrom(stalled, "pausing vm");
    expect(failure.reason).to.equal(FailureReason.ControllerStalled);
    expect(failure.message).to.match(/^pausing vm: this process stalled, not libvirt/);
    expect(failure.message).to.not.match(/libvirt error/);
  });

  it("libvirt's own silence stays a HypervisorError with its code", () => {
    expect(failureFrom(timedOut, "pausing vm")).to.deep.equal({
      reason: FailureReason.HypervisorError,
      message: "pausing vm: libvirt error -1 (Timeout): suspend(vm): no answer within 300 ms",
    });
  });

  it("restores tell the two apart the same way", () => {
    expect(restoreFailureFrom(stalled, "stopping vm").reason).to.equal(
      RestoreFailureReason.ControllerStalled,
    );
    expect(restoreFailureFrom(timedOut, "stopping vm").reason).to.equal(
      RestoreFailureReason.HypervisorError,
    );
  });
});
