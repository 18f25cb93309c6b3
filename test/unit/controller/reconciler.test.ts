// The one reconcile loop, in-process: the real VMSnapshot kind, machine and effects over fake
// ports (an API server that answers 409/500, a libvirt and storage that record their calls, a
// clock the test moves). Each case asserts the calls the controller made, in order.
import { expect } from "chai";
import { Reconciler } from "../../../src/controller/reconciler.ts";
import { objectKey } from "../../../src/kube/resource.ts";
import type { Kind } from "../../../src/controller/kind.ts";
import type { VMSnapshot } from "../../../src/api/types.ts";
import { bed, T0, type Journal } from "./loop-ports.ts";

/** Reconciles `key` until the loop has nothing left to do, as the work queue would. */
async function settle(b: ReturnType<typeof bed>, key: string, rounds = 10): Promise<void> {
  for (let i = 0; i < rounds; i++) {
    const { requeueAfterMs } = await b.reconciler.reconcile(key);
    if (requeueAfterMs === undefined) return;
  }
}

function only(journal: Journal, prefix: string): string[] {
  return journal.filter((line) => line.startsWith(prefix));
}

describe("the reconcile loop, in-process over fake ports", () => {
  it("1-1 a disk snapshot: finalizer first, write-ahead before the freeze, one status write per phase, thaw last", async () => {
    const b = bed();
    const s = b.snapshot("s1", "vm-a");
    await settle(b, objectKey(s));
    const final = b.api.objects.get(objectKey(s))!;
    expect(final.status?.phase).to.equal("Succeeded");
    const order = b.journal.filter((l) => !l.startsWith("event:") && !l.startsWith("api:get"));
    expect(order).to.deep.equal([
      "api:setFinalizers [vmsnap.io/artefacts]",
      "api:patchStatus Pending", // picked up: Reconciling=True before the first effect
      "rbd:prepare vmsnap-uid-1",
      "api:patchStatus Pending", // the write-ahead: the freeze deadline is in status first
      "guard:arm vm-a",
      "hv:fsFreeze vm-a",
      "rbd:create vmsnap-uid-1",
      "api:patchStatus Frozen",
      // Sent, not awaited, while the thaw looks the domain up by its pinned UUID.
      "api:patchStatus DisksSnapshotted",
      "hv:fsThaw vm-a",
      "guard:disarm",
      "api:patchStatus Thawed",
      "rbd:verify pool/vm-a-disk@vmsnap-uid-1", // what the snapshot holds, checked after the thaw
      "api:patchStatus Succeeded",
    ]);
    expect(only(b.journal, "event:")).to.deep.equal([
      "event:Frozen",
      "event:DisksSnapshotted",
      "event:Thawed",
      "event:Succeeded",
    ]);
    expect(b.hv.frozen.size).to.equal(0);
  });

  it("1-2 a VM snapshot pauses the vCPUs inside the frozen window and resumes them before the thaw", async () => {
    const b = bed();
    const s = b.snapshot("s1", "vm-a", true);
    await settle(b, objectKey(s));
    expect(b.api.objects.get(objectKey(s))!.status?.phase).to.equal("Succeeded");
    const hv = only(b.journal, "hv:").concat(only(b.journal, "memory:"));
    expect(only(b.journal, "hv:")).to.deep.equal([
      "hv:fsFreeze vm-a",
      "hv:suspend vm-a",
      "hv:resume vm-a",
      "hv:fsThaw vm-a",
    ]);
    expect(hv).to.include("memory:save vmsnap-uid-1");
  });

  it("2-1 a 409 on a status write whose status nobody else changed is retried once on a fresh read", async () => {
    const b = bed();
    const s = b.snapshot("s1", "vm-a");
    const key = objectKey(s);
    // Someone adds a label: the resourceVersion moves, status stays ours.
    b.api.failNext("conflict", (status) => status.phase === "Succeeded");
    await settle(b, key);
    expect(b.api.objects.get(key)!.status?.phase).to.equal("Succeeded");
    const writes = b.api.statusWrites(b.journal);
    expect(writes.filter((w) => w === "api:patchStatus Succeeded")).to.have.length(2);
    expect(b.journal).to.include("api:get s1");
  });

  it("2-2 a 409 where someone else changed status is not overwritten: the reconcile fails for a retry", async () => {
    const b = bed();
    const s = b.snapshot("s1", "vm-a");
    const key = objectKey(s);
    await b.reconciler.reconcile(key).catch(() => undefined);
    b.api.touch(key, (o) => ({ ...o, status: { ...o.status, phase: "Failed" } }));
    b.api.failNext("conflict");
    // The cache still shows the old status; the write finds a status it did not base on.
    const stale = { ...b.api.objects.get(key)!, status: { phase: "Pending" as const } };
    const r = new Reconciler({
      kind: (b.reconciler as unknown as { kind: Kind<VMSnapshot, never, never, never> }).kind,
      read: () => stale,
      client: b.api,
      events: { record: () => undefined },
    });
    let thrown: unknown;
    await r.reconcile(key).catch((err: unknown) => (thrown = err));
    expect(String(thrown)).to.match(/modified/);
    expect(b.api.objects.get(key)!.status?.phase).to.equal("Failed");
  });

  it("3-1 a failed write-ahead never freezes the guest", async () => {
    const b = bed();
    const s = b.snapshot("s1", "vm-a");
    b.api.failNext("server-error", (status) => status.freezeDeadline !== undefined);
    let thrown: unknown;
    await b.reconciler.reconcile(objectKey(s)).catch((err: unknown) => (thrown = err));
    expect(String(thrown)).to.match(/HTTP 500/);
    expect(b.journal).to.not.include("hv:fsFreeze vm-a");
    expect(b.journal).to.not.include("guard:arm vm-a");
  });

  it("3-2 a failed status write inside the frozen window does not hold the guest: the thaw follows and status catches up", async () => {
    const b = bed();
    const s = b.snapshot("s1", "vm-a");
    b.api.failNext("server-error", (status) => status.phase === "Frozen");
    await settle(b, objectKey(s));
    expect(b.journal).to.include("hv:fsThaw vm-a");
    expect(b.hv.frozen.size).to.equal(0);
    expect(b.api.objects.get(objectKey(s))!.status?.phase).to.equal("Succeeded");
    expect(b.logs.map((l) => l.message)).to.include(
      "status write failed inside an urgent window; going on",
    );
  });

  it("4-1 a snapshot waiting for the domain lock writes its waiting status once, however often it is looked at", async () => {
    const b = bed();
    b.api.reorderKeys = true; // the server returns keys in its own order
    const first = b.snapshot("s1", "vm-a");
    const second = b.snapshot("s2", "vm-a");
    // The first one holds the domain (armed, waiting for its guard) when the second one comes.
    b.guard.down = true;
    await b.reconciler.reconcile(objectKey(first));
    await b.reconciler.reconcile(objectKey(second)); // picked up, then told to wait
    const before = b.api.statusWrites(b.journal).length;
    for (let i = 0; i < 5; i++) {
      b.clock.now += 1_000;
      const r = await b.reconciler.reconcile(objectKey(second));
      expect(r.requeueAfterMs).to.be.a("number");
    }
    expect(b.api.statusWrites(b.journal).slice(before), "nothing new to say").to.deep.equal([]);
    const status = b.api.objects.get(objectKey(second))!.status!;
    const reconciling = status.conditions!.find((c) => c.type === "Reconciling")!;
    expect(reconciling.reason).to.equal("WaitingForDomainLock");
  });

  it("4-2 deleting a snapshot that only waited for the domain never thaws or resumes the guest another snapshot froze", async () => {
    const b = bed();
    const holder = b.snapshot("s1", "vm-a", true);
    const waiter = b.snapshot("s2", "vm-a", true);
    // The holder has claimed the domain and armed its freeze (its guard is slow to answer).
    b.guard.down = true;
    await b.reconciler.reconcile(objectKey(holder));
    await b.reconciler.reconcile(objectKey(waiter));
    const waiting = b.api.objects.get(objectKey(waiter))!.status!.conditions!;
    expect(waiting.find((c) => c.type === "Reconciling")!.reason).to.equal("WaitingForDomainLock");
    // The holder's window as the guest sees it: frozen and paused.
    b.hv.frozen.add("vm-a");
    b.hv.paused.add("vm-a");
    const mark = b.journal.length;
    b.api.touch(objectKey(waiter), (o) => ({
      ...o,
      metadata: { ...o.metadata, deletionTimestamp: new Date(b.clock.now) },
    }));
    await b.reconciler.reconcile(objectKey(waiter));
    const after = b.journal.slice(mark);
    expect(after.filter((l) => l.startsWith("hv:"))).to.deep.equal([]);
    expect(after).to.include("api:setFinalizers []");
    expect(b.hv.frozen.has("vm-a")).to.equal(true);
    expect(b.hv.paused.has("vm-a")).to.equal(true);
  });

  it("4-3 deletion removes the snapshot status recorded, even after the domain's disk moved to another image", async () => {
    const b = bed();
    const s = b.snapshot("s1", "vm-a");
    await settle(b, objectKey(s));
    expect(b.api.objects.get(objectKey(s))!.status?.disks?.[0]?.source).to.equal("pool/vm-a-disk");
    b.hv.images.set("vm-a", "vm-a-disk-v2"); // the administrator moved vda since
    b.api.touch(objectKey(s), (o) => ({
      ...o,
      metadata: { ...o.metadata, deletionTimestamp: new Date(b.clock.now) },
    }));
    await b.reconciler.reconcile(objectKey(s));
    expect(only(b.journal, "rbd:remove")).to.deep.equal(["rbd:remove vmsnap-uid-1 pool/vm-a-disk"]);
  });

  it("4-4 the RBD group is named by the domain's UUID pinned at the first look-up, for prepare, create and removal alike", async () => {
    const b = bed();
    const s = b.snapshot("s1", "vm-a");
    await settle(b, objectKey(s));
    b.api.touch(objectKey(s), (o) => ({
      ...o,
      metadata: { ...o.metadata, deletionTimestamp: new Date(b.clock.now) },
    }));
    await b.reconciler.reconcile(objectKey(s));
    expect(only(b.journal, "rbd:")).to.deep.equal([
      "rbd:prepare vmsnap-uid-1",
      "rbd:create vmsnap-uid-1",
      "rbd:verify pool/vm-a-disk@vmsnap-uid-1",
      "rbd:remove vmsnap-uid-1 pool/vm-a-disk",
    ]);
    expect(b.storageFaults.uuids).to.deep.equal(["uuid-vm-a", "uuid-vm-a", "uuid-vm-a"]);
  });

  it("4-5 a snapshot whose RBD group changed members under it fails after the thaw, StorageError, and is removed", async () => {
    const b = bed();
    const s = b.snapshot("s1", "vm-a");
    b.storageFaults.membershipChanged = true;
    await settle(b, objectKey(s));
    const status = b.api.objects.get(objectKey(s))!.status!;
    expect(status.phase).to.equal("Failed");
    expect(status.error?.reason).to.equal("StorageError");
    expect(status.error?.message).to.match(/MembershipChanged/);
    expect(status.thawedAt, "checked once the guest ran again").to.be.a("string");
    expect(only(b.journal, "rbd:").slice(-2)).to.deep.equal([
      "rbd:verify pool/vm-a-disk@vmsnap-uid-1",
      "rbd:remove vmsnap-uid-1 pool/vm-a-disk",
    ]);
    expect(b.hv.frozen.size).to.equal(0);
  });

  it("6-1 spec.failureDeadline holds while the disk snapshots are prepared (a stalled Ceph): Failed DeadlineExceeded, never frozen", async () => {
    const b = bed();
    const s = b.snapshot("s1", "vm-a", false, { failureDeadline: "10s" });
    b.storageFaults.prepareStallsAfterMs = 11_000;
    await settle(b, objectKey(s));
    const status = b.api.objects.get(objectKey(s))!.status!;
    expect(status.phase).to.equal("Failed");
    expect(status.error?.reason).to.equal("DeadlineExceeded");
    expect(b.journal).to.not.include("hv:fsFreeze vm-a");
  });

  it("6-2 a guard that thawed the guest under the attempt fails it, and status says when the guard thawed", async () => {
    const b = bed();
    const s = b.snapshot("s1", "vm-a");
    const guardAt = T0 + 4_000;
    b.storageFaults.duringCreate = () => {
      b.hv.frozen.delete("vm-a"); // the guard thawed: this process stalled past the deadline
      b.effects.guardFired({ id: s.metadata.uid!, at: guardAt, outcome: "thawed" });
      b.clock.now = T0 + 9_000;
    };
    await settle(b, objectKey(s));
    const status = b.api.objects.get(objectKey(s))!.status!;
    expect(status.phase).to.equal("Failed");
    expect(status.error?.reason).to.equal("FreezeTimeout");
    expect(status.error?.message).to.match(/thaw guard thawed the guest/);
    expect(Date.parse(status.thawedAt!)).to.equal(guardAt);
    expect(only(b.journal, "rbd:remove")).to.have.length(1);
  });

  it("6-2a a domain not found after the freeze (migrated, redefined) is never called thawed: Thawed=Unknown, and the guard stays armed", async () => {
    const b = bed();
    const s = b.snapshot("s1", "vm-a");
    b.storageFaults.duringCreate = () => {
      b.hv.domains.delete("vm-a"); // gone from this host while frozen
    };
    await settle(b, objectKey(s));
    const status = b.api.objects.get(objectKey(s))!.status!;
    expect(status.phase).to.equal("Failed");
    expect(status.thawedAt).to.equal(undefined);
    expect(status.freezeDurationMs).to.equal(undefined);
    const thawed = status.conditions?.find((c) => c.type === "Thawed");
    expect(thawed).to.include({ status: "Unknown", reason: "ThawUnconfirmed" });
    expect(thawed?.message).to.match(/not found .*may still be frozen elsewhere/);
    // The guard's report at the deadline is the last word: it is not disarmed.
    expect(b.journal).to.not.include("guard:disarm");
  });

  it("6-2d an unconfirmed thaw is checked again with the guest agent until it says thawed, then status says when", async () => {
    const b = bed();
    const s = b.snapshot("s1", "vm-a");
    b.storageFaults.duringCreate = () => {
      b.hv.domains.delete("vm-a");
    };
    await settle(b, objectKey(s));
    const key = objectKey(s);
    const thawedCondition = () =>
      b.api.objects.get(key)!.status!.conditions?.find((c) => c.type === "Thawed");
    expect(thawedCondition()).to.include({ status: "Unknown" });

    // Back (migrated back, libvirtd answering again) but still frozen: still unknown, ask again.
    b.hv.domains.add("vm-a");
    expect(b.hv.frozen.has("vm-a")).to.equal(true);
    expect(await b.reconciler.reconcile(key)).to.deep.equal({ requeueAfterMs: 10_000 });
    expect(thawedCondition()).to.include({ status: "Unknown" });
    expect(b.journal).to.include("hv:freezeStatus vm-a");

    // Thawed (by the guard, an administrator): the agent sees it and says so, once.
    b.hv.frozen.delete("vm-a");
    b.clock.now = T0 + 60_000;
    expect(await b.reconciler.reconcile(key)).to.deep.equal({});
    const status = b.api.objects.get(key)!.status!;
    expect(status.phase).to.equal("Failed");
    expect(thawedCondition(), "no Thawed=Unknown once confirmed").to.equal(undefined);
    expect(Date.parse(status.thawedAt!), "when the agent confirmed it").to.equal(T0 + 60_000);
    expect(await b.reconciler.reconcile(key)).to.deep.equal({});
  });

  it("6-2b a guard that fired but could not confirm the thaw fails the attempt without claiming a thaw", async () => {
    const b = bed();
    const s = b.snapshot("s1", "vm-a");
    b.storageFaults.duringCreate = () => {
      b.hv.domains.delete("vm-a");
      b.effects.guardFired({
        id: s.metadata.uid!,
        at: T0 + 4_000,
        outcome: "lost",
        error: "DomainNotFound",
      });
      b.clock.now = T0 + 9_000;
    };
    await settle(b, objectKey(s));
    const status = b.api.objects.get(objectKey(s))!.status!;
    expect(status.phase).to.equal("Failed");
    expect(status.error?.message).to.match(/could not confirm a thaw/);
    expect(status.thawedAt).to.equal(undefined);
    expect(status.conditions?.find((c) => c.type === "Thawed")).to.include({
      status: "Unknown",
      reason: "ThawUnconfirmed",
    });
  });

  it("6-2c a successful snapshot writes no Thawed condition (it only speaks when unconfirmed)", async () => {
    const b = bed();
    const s = b.snapshot("s1", "vm-a");
    await settle(b, objectKey(s));
    const status = b.api.objects.get(objectKey(s))!.status!;
    expect(status.phase).to.equal("Succeeded");
    expect(status.conditions?.map((c) => c.type)).to.not.include("Thawed");
  });

  it("6-3 a snapshot that vanishes without its finalizer (force-removed) lets go of the domain it held", async () => {
    const b = bed();
    const gone = b.snapshot("s1", "vm-a");
    b.guard.down = true;
    await b.reconciler.reconcile(objectKey(gone)); // holds vm-a, waits for its guard
    b.api.objects.delete(objectKey(gone));
    await b.reconciler.reconcile(objectKey(gone));
    b.guard.down = false;
    const next = b.snapshot("s2", "vm-a");
    await settle(b, objectKey(next));
    expect(b.api.objects.get(objectKey(next))!.status?.phase).to.equal("Succeeded");
  });

  it("5-1 an event the machine does not take is logged, nothing is written, and the key comes back later", async () => {
    const journal: Journal = [];
    const kind: Kind<VMSnapshot, { phase: string }, { type: string }, never> = {
      name: "test",
      finalizer: "test/f",
      stateOf: () => ({ phase: "Pending" }),
      step: (state) => ({ ...state, compensations: [], accepted: false }),
      isFinal: () => false,
      overdue: () => undefined,
      statusOf: () => ({ phase: "Pending" }),
      run: async () => ({ event: { type: "SURPRISE" } }),
      compensate: async (_o, _s, next) => next,
      finalize: async () => undefined,
      finish: () => undefined,
      forget: () => undefined,
      urgent: () => false,
      writeAhead: () => false,
      announce: () => ({ type: "Normal", reason: "x", note: "x" }),
    };
    const object = {
      metadata: {
        name: "o",
        namespace: "ns",
        uid: "u",
        resourceVersion: "1",
        finalizers: ["test/f"],
      },
      spec: { source: { domain: "d", node: "n" } },
      status: { phase: "Pending" as const },
    } as VMSnapshot;
    const logs: string[] = [];
    const r = new Reconciler({
      kind,
      read: () => object,
      client: {
        get: async () => object,
        patchStatus: async (o) => (journal.push("patch"), o),
        setFinalizers: async (o) => (journal.push("finalizers"), o),
      },
      events: { record: () => journal.push("event") },
      log: (message) => logs.push(message),
    });
    const result = await r.reconcile("ns/o");
    expect(result.requeueAfterMs).to.equal(1_000);
    expect(journal).to.deep.equal([]);
    expect(logs).to.deep.equal(["event ignored by the phase machine"]);
  });
});
