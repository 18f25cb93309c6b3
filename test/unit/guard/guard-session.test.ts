// One controller's stream of commands, as the guard handles it: every command gets exactly one
// reply in order (the client matches them up by position), entries fire through `thaw` at their
// deadline or when the stream's owner is gone, and an arm that comes while the guard is stopping
// is refused — an ack would let the caller freeze with no deadline behind it — yet its guest is
// still thawed, in case it was a re-arm of a guest frozen already.
import { expect } from "chai";

import { GuardSession } from "../../../src/guard/guard-session.ts";
import { GuardState } from "../../../src/guard/guard-state.ts";
import type { ArmCommand, Reply, StateReply } from "../../../src/guard/protocol.ts";
import type { ThawResult } from "../../../src/hypervisor/thaw.ts";

const THAWED: ThawResult = { outcome: "thawed", thawed: 2, resumed: false, attempts: 1 };

type Thaw = (entry: ArmCommand, onRetry: () => void) => Promise<ThawResult>;

function session(stopping = () => false, thaw?: Thaw, state?: GuardState) {
  const replies: Reply[] = [];
  const states: StateReply[] = [];
  const thawed: string[] = [];
  const s = new GuardSession({
    thaw: async (entry, onRetry) => {
      thawed.push(entry.domain);
      return thaw ? thaw(entry, onRetry) : THAWED;
    },
    // State reports come between the answers; the answers' order is what the client relies on.
    send: (reply) => (reply.type === "state" ? states.push(reply) : replies.push(reply)),
    log: () => {},
    stopping,
    ...(state ? { state } : {}),
  });
  return { s, replies, states, thawed };
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

  describe("its state, reported to the controller", () => {
    /** A thaw that fails (as against a down libvirtd) until `release` is called. */
    function stuckThaw() {
      let released = false;
      const thaw: Thaw = async (_entry, onRetry) => {
        while (!released) {
          onRetry();
          await new Promise((r) => setTimeout(r, 5));
        }
        return THAWED;
      };
      return { thaw, release: () => (released = true) };
    }

    it("counts armed entries, then a fired thaw as overdue while it is retried", async () => {
      const stuck = stuckThaw();
      const { s, states, replies } = session(() => false, stuck.thaw);
      s.sendState();
      expect(states.at(-1)).to.deep.equal({
        type: "state",
        armed: 0,
        thawing: 0,
        overdue: 0,
        retries: 0,
      });
      s.receive(arm("a", "web-1", 20));
      s.receive(arm("b", "web-2"));
      expect(states.at(-1)).to.include({ armed: 2, overdue: 0 });
      await new Promise((r) => setTimeout(r, 80));
      const during = states.at(-1)!;
      expect(during).to.include({ armed: 1, thawing: 1, overdue: 1 });
      expect(during.retries).to.be.above(3);
      expect(replies.filter((r) => r.type === "thawed")).to.have.length(0);
      stuck.release();
      await new Promise((r) => setTimeout(r, 30));
      expect(states.at(-1)).to.include({ armed: 1, thawing: 0, overdue: 0 });
      expect(states.at(-1)!.retries).to.be.at.least(during.retries);
      expect(replies.at(-1)).to.include({ type: "thawed", id: "a", outcome: "thawed" });
      s.receive(JSON.stringify({ type: "disarm", id: "b" }));
    });

    it("refuses to arm a domain whose thaw is not confirmed yet: a freeze would race it", async () => {
      const stuck = stuckThaw();
      const state = new GuardState();
      const first = session(() => false, stuck.thaw, state);
      first.s.receive(arm("a", "web-1", 0));
      await new Promise((r) => setTimeout(r, 20));
      // Another connection (a reconnected controller) is refused that domain too, not others.
      const second = session(() => false, undefined, state);
      second.s.receive(arm("b", "web-1"));
      second.s.receive(arm("c", "web-2"));
      expect(second.replies).to.deep.equal([
        { type: "rejected", error: "the thaw guard is still thawing web-1" },
        { type: "ack", op: "arm", id: "c" },
      ]);
      stuck.release();
      await new Promise((r) => setTimeout(r, 30));
      second.s.receive(arm("b", "web-1"));
      expect(second.replies.at(-1)).to.deep.equal({ type: "ack", op: "arm", id: "b" });
      expect(second.states.at(-1)).to.include({ armed: 2, thawing: 0 });
      await second.s.drain("terminated");
    });

    it("keeps counting a closed connection's thaws under way, but no longer its armed entries", async () => {
      const stuck = stuckThaw();
      const state = new GuardState();
      const gone = session(() => false, stuck.thaw, state);
      const live = session(() => false, undefined, state);
      gone.s.receive(arm("a", "web-1", 0));
      gone.s.receive(arm("b", "web-2"));
      await new Promise((r) => setTimeout(r, 20));
      gone.s.close();
      live.s.sendState();
      expect(live.states.at(-1)).to.include({ armed: 0, thawing: 1, overdue: 1 });
      const before = gone.states.length;
      stuck.release();
      await new Promise((r) => setTimeout(r, 30));
      expect(gone.states.length, "a closed session is not written to").to.equal(before);
      expect(live.states.at(-1)).to.include({ thawing: 0, overdue: 0 });
      await gone.s.drain("orphaned");
    });
  });
});
