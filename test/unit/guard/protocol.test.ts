// The guard's wire protocol: what the guard acts on (commands) and what the controller resolves
// promises by (replies) survive a round trip, and anything malformed is refused with a
// ProtocolError instead of being half-understood.
import { expect } from "chai";

import {
  decodeCommand,
  decodeReply,
  encode,
  MAX_LINE_LENGTH,
  ProtocolError,
  type Command,
  type Reply,
} from "../../../src/guard/protocol.ts";

const DEADLINE = 1_795_789_514_888;
const arm = {
  type: "arm",
  id: "3f2c-uid",
  domain: "web-1",
  deadline: DEADLINE,
  resumeIfPaused: true,
} as const;

function refusal(decode: (line: string) => unknown, line: string): string {
  try {
    decode(line);
  } catch (err) {
    expect(err).to.be.instanceOf(ProtocolError);
    return (err as Error).message;
  }
  throw new Error(`accepted: ${line}`);
}

describe("guard protocol", () => {
  describe("encoding", () => {
    it("writes one JSON object per line", () => {
      const line = encode(arm);
      expect(line.endsWith("\n")).to.equal(true);
      expect(line.slice(0, -1)).not.to.include("\n");
      expect(JSON.parse(line)).to.deep.equal(arm);
    });
  });

  describe("commands", () => {
    const valid: Command[] = [
      arm,
      { ...arm, resumeIfPaused: false },
      { ...arm, uuid: "4dea22b3-1d52-d8f3-2516-782e98ab3fa0" },
      { type: "disarm", id: "x" },
    ];
    for (const command of valid) {
      it(`round-trips ${JSON.stringify(command)}`, () => {
        expect(decodeCommand(encode(command).trimEnd())).to.deep.equal(command);
      });
    }

    it("drops fields it does not know", () => {
      const line = JSON.stringify({ ...arm, extra: 1 });
      expect(decodeCommand(line)).to.deep.equal(arm);
    });

    const invalid: Array<[string, unknown, RegExp]> = [
      ["an unknown type", { ...arm, type: "thaw" }, /unknown command/],
      ["a missing id", { ...arm, id: undefined }, /id/],
      ["an empty id", { ...arm, id: "" }, /id/],
      ["an over-long id", { ...arm, id: "x".repeat(257) }, /id/],
      ["a numeric domain", { ...arm, domain: 7 }, /domain/],
      ["a deadline in seconds", { ...arm, deadline: Math.floor(DEADLINE / 1000) }, /epoch/],
      ["a fractional deadline", { ...arm, deadline: DEADLINE + 0.5 }, /deadline/],
      ["a string deadline", { ...arm, deadline: String(DEADLINE) }, /deadline/],
      ["a negative deadline", { ...arm, deadline: -DEADLINE }, /deadline/],
      ["resumeIfPaused missing", { ...arm, resumeIfPaused: undefined }, /resumeIfPaused/],
      ["resumeIfPaused as a string", { ...arm, resumeIfPaused: "true" }, /resumeIfPaused/],
      ["a disarm without id", { type: "disarm" }, /id/],
      ["an array", [arm], /object/],
      ["null", null, /object/],
    ];
    for (const [what, value, message] of invalid) {
      it(`refuses ${what}`, () => {
        expect(refusal(decodeCommand, JSON.stringify(value))).to.match(message);
      });
    }

    it("refuses text that is not JSON, and over-long lines", () => {
      expect(refusal(decodeCommand, "arm web-1")).to.match(/not JSON/);
      const long = JSON.stringify({ ...arm, domain: "d".repeat(MAX_LINE_LENGTH) });
      expect(refusal(decodeCommand, long)).to.match(/longer/);
    });
  });

  describe("replies", () => {
    const thawed: Reply = {
      type: "thawed",
      id: "u",
      domain: "web-1",
      deadline: DEADLINE,
      cause: "orphaned",
      outcome: "thawed",
      thawed: 2,
      resumed: true,
      attempts: 1,
      at: DEADLINE + 40,
    };
    const valid: Reply[] = [
      { type: "ready", pid: 4242 },
      { type: "ack", op: "arm", id: "u" },
      { type: "ack", op: "disarm", id: "u" },
      { type: "rejected", error: "not JSON" },
      thawed,
      { ...thawed, outcome: "failed", thawed: 0, attempts: 8, error: "GuestAgentUnresponsive" },
      { ...thawed, outcome: "lost", thawed: 0, error: "DomainNotFound" },
      { ...thawed, outcome: "stopped", thawed: 0, error: "DomainNotRunning" },
      { type: "state", armed: 3, thawing: 1, overdue: 1, retries: 17 },
    ];
    for (const reply of valid) {
      it(`round-trips ${reply.type} ${JSON.stringify(reply).slice(0, 60)}`, () => {
        expect(decodeReply(encode(reply).trimEnd())).to.deep.equal(reply);
      });
    }

    const invalid: Array<[string, unknown, RegExp]> = [
      ["an ack of an unknown op", { type: "ack", op: "thaw", id: "u" }, /op/],
      ["a thawed report with an unknown cause", { ...thawed, cause: "bored" }, /cause/],
      ["a thawed report with an unknown outcome", { ...thawed, outcome: "maybe" }, /outcome/],
      ["a negative filesystem count", { ...thawed, thawed: -1 }, /thawed/],
      ["a ready without pid", { type: "ready" }, /pid/],
      ["the old 'gone' outcome", { ...thawed, outcome: "gone" }, /outcome/],
      [
        "a state without its retry count",
        { type: "state", armed: 0, thawing: 0, overdue: 0 },
        /retries/,
      ],
      ["a command sent back", arm, /unknown reply/],
    ];
    for (const [what, value, message] of invalid) {
      it(`refuses ${what}`, () => {
        expect(refusal(decodeReply, JSON.stringify(value))).to.match(message);
      });
    }
  });
});
