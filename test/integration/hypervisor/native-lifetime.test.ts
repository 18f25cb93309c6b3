// The addon hands JS callbacks to libvirt (close callback, domain events) and must let go of
// them once the connection is closed: a controller opening connections over weeks must not
// accumulate them, nor whatever they capture (the whole adapter, for the close callback).
import { expect } from "chai";
import { setTimeout as sleep } from "node:timers/promises";
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";

import { DomainEventId } from "../../../src/hypervisor/flags.ts";
import { loadNative } from "../../../src/hypervisor/native.ts";
import { RUNNING, TEST_URI } from "./test-host.ts";

setFlagsFromString("--expose-gc");
const gc = runInNewContext("gc") as () => void;

/** Whether everything in `refs` was garbage-collected after a few GC rounds. */
async function collected(refs: WeakRef<object>[]): Promise<boolean> {
  for (let i = 0; i < 20; i++) {
    await sleep(10); // the addon deletes its references on the JS thread, via its queue
    gc();
    if (refs.every((ref) => ref.deref() === undefined)) return true;
  }
  return false;
}

describe("addon callback lifetime", () => {
  const native = loadNative();

  // Each helper returns only a WeakRef: a callback kept in the test's own (suspended) frame
  // would stay alive whatever the addon does.
  async function closeCallbackOfClosedConnection(): Promise<WeakRef<object>> {
    const onClose = () => {};
    const conn = await native.open(TEST_URI, 5, 3, onClose);
    await conn.close();
    return new WeakRef(onClose);
  }

  async function eventListenerOfClosedConnection(deregister: boolean): Promise<WeakRef<object>> {
    const conn = await native.open(TEST_URI, 5, 3, () => {});
    const seen: number[] = [];
    const listener = (e: { event: number }) => seen.push(e.event);
    const id = await conn.registerDomainEvent(DomainEventId.Lifecycle, listener);
    await conn.suspend(RUNNING);
    for (let i = 0; i < 100 && seen.length === 0; i++) await sleep(5);
    expect(seen, "the listener was live before close").to.deep.equal([3]);
    if (deregister) await conn.deregisterDomainEvent(id);
    await conn.close();
    return new WeakRef(listener);
  }

  it("releases the close callback once closed, even on drivers that never call it", async () => {
    const refs = [];
    for (let i = 0; i < 5; i++) refs.push(await closeCallbackOfClosedConnection());
    expect(await collected(refs)).to.equal(true);
  });

  it("releases event listeners on close, with or without deregistering first", async () => {
    const refs = [
      await eventListenerOfClosedConnection(true),
      await eventListenerOfClosedConnection(false),
    ];
    expect(await collected(refs)).to.equal(true);
  });
});
