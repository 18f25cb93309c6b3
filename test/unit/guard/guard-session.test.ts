// One controller's stream of commands, as the guard handles it: every command gets exactly one
// reply in order (the client matches them up by position), entries fire through `thaw` at their
// deadline or when the stream's owner is gone, and an arm that comes while the guard is stopping
// is refused — an ack would let the caller freeze with no deadline behind it — yet its guest is
// still thawed, in case it was a re-arm of a guest frozen already.
import { expect } from "chai";

import { GuardSession } from "../../../src/guard/guard-session.ts";
import type { ArmCommand, Reply } from "../../../src/guard/protocol.ts";
import type { ThawResult } from "../../../src/hypervisor/thaw.ts";

const THAWED: ThawResult = { outcome: "thawed", thawed: 2, resumed: false, attempts: 1 };

function session(stopping = () => false) {
  const replies: Reply[] = [];
  const thawed: string[] = [];
  const s = new GuardSession({
    thaw: async (entry: ArmCommand) => {
      thawed.push(entry.domain);
      return THAWED;
    },
    send: (reply) => replies.push(reply),
    log: () => {},
    stopping,
  });
  return { s, replies, thawed };
}

const arm = (id: string, domain: string, inMs = 60_000) =>
  JSON.stringify({ type: "arm", id, domain, deadline: Date.now() + inMs, resumeIfPaused: false });

describe("guard session", () => {
  it("answers each command once, in order, and a line it cannot read with `rejected`", () => {
    const { s, replies } = session();
    s.receive(arm("a", "web-1"));
    s.receive("{not json");
    s.receive("");
    s.receive(JSON.stringify({ type: "disarm", id: "a" }));
    expect(replies).to.deep.equal([
      { type: "ack", op: "arm", id: "a" },
      { type: "rejected", error: "not JSON" },
      { type: "ack", op: "disarm", id: "a" },
    ]);
    expect(s.armed).to.equal(0);
  });

  it("fires its entries at their deadline and reports each thaw", async () => {
    const { s, replies, thawed } = session();
    s.receive(arm("a", "web-1", 20));
    await new Promise((r) => setTimeout(r, 60));
    expect(thawed).to.deep.equal(["web-1"]);
    expect(replies[1]).to.include({ type: "thawed", id: "a", cause: "deadline", thawed: 2 });
  });

  it("drains only its own entries, at once, with the cause it is given", async () => {
    const mine = session();
    const other = session();
    mine.s.receive(arm("a", "web-1"));
    other.s.receive(arm("b", "web-2"));
    await mine.s.drain("orphaned");
    expect(mine.thawed).to.deep.equal(["web-1"]);
    expect(mine.replies[1]).to.include({ type: "thawed", id: "a", cause: "orphaned" });
    expect(other.thawed).to.deep.equal([]);
    expect(other.s.armed).to.equal(1);
    await other.s.drain("terminated");
  });

  it("refuses an arm while stopping, and thaws that guest anyway", async () => {
    let stopping = false;
    const { s, replies, thawed } = session(() => stopping);
    stopping = true;
    s.receive(arm("late", "web-3"));
    expect(replies[0]).to.deep.equal({ type: "rejected", error: "the thaw guard is stopping" });
    await s.drain("terminated");
    expect(thawed).to.deep.equal(["web-3"]);
    expect(replies[1]).to.include({ type: "thawed", id: "late", cause: "terminated" });
  });
});
