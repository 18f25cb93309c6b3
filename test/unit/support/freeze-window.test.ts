// The e2e tests judge "the freeze held this write up" from the guest console alone: the hook's
// uptime stamps around FIFREEZE/FITHAW and each writer record's start/end. The judgement is
// pure, so its edges are pinned here with hand-written console text.
import { expect } from "chai";
import { notHeldByFreeze } from "../../support/e2e/freeze-window.ts";
import { hookCalls, writerRecords, type HookCall } from "../../support/guest/console.ts";

const CONSOLE = [
  "vmsnap-writer vda seq=4 t=3.10 w=3.12",
  "vmsnap-hook: freeze mode=ok up=3.37",
  "vmsnap-writer vdb seq=5 t=3.47 w=3.71",
  "vmsnap-hook: thaw mode=ok up=3.75",
  "vmsnap-hook: thaw mode=ok up=",
].join("\r\n");

describe("freeze-window judgement from the guest console", () => {
  let freeze: HookCall;
  let thaw: HookCall;

  before(() => {
    [freeze, thaw] = hookCalls(CONSOLE.replace(/\r/g, "")) as [HookCall, HookCall];
  });

  it("reads each complete hook line with its uptime and line index, nothing else", () => {
    expect(hookCalls(CONSOLE.replace(/\r/g, ""))).to.deep.equal([
      { action: "freeze", mode: "ok", up: 3.37, line: 1 },
      { action: "thaw", mode: "ok", up: 3.75, line: 3 },
    ]);
  });

  it("a write that started while frozen and ended at the thaw was held up", () => {
    const [held] = writerRecords(CONSOLE.replace(/\r/g, ""), "vdb");
    expect(notHeldByFreeze(held!, freeze, thaw)).to.equal(undefined);
  });

  it("a write that ended well before the thaw stamp was not held (its disk was not frozen)", () => {
    const quick = { disk: "vdb", seq: 5, t: 3.47, w: 3.5 };
    expect(notHeldByFreeze(quick, freeze, thaw)).to.match(/ended at 3.5 s, while still frozen/);
  });

  it("a write that started before the freeze or after the thaw was not held", () => {
    const before = { disk: "vda", seq: 4, t: 3.1, w: 3.74 };
    const after = { disk: "vda", seq: 6, t: 3.75, w: 3.76 };
    expect(notHeldByFreeze(before, freeze, thaw)).to.match(/before the freeze/);
    expect(notHeldByFreeze(after, freeze, thaw)).to.match(/after the thaw/);
  });
});
