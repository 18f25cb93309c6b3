// Invariants of the phase machine, checked on every simple path of its graph (xstate/graph) for
// every combination of `memory` and `quiesce`. Each path is replayed through step(), the same
// function the reconciler uses, so the compensations checked are the ones that would run.
import { expect } from "chai";
import { getSimplePaths } from "xstate/graph";
import { snapshotMachine } from "../../../src/machine/machine.ts";
import { mayBeFrozen } from "../../../src/machine/context.ts";
import { isFinal, start, step, type MachineState, type Step } from "../../../src/machine/step.ts";
import type { SnapshotEvent } from "../../../src/machine/events.ts";
import type { SnapshotInput } from "../../../src/machine/context.ts";
import { allEvents, inputs } from "./fixtures.ts";

interface Replayed {
  readonly events: SnapshotEvent[];
  readonly steps: Step[];
  readonly final: MachineState;
}

function pathsFor(input: SnapshotInput): Replayed[] {
  const paths = getSimplePaths(snapshotMachine, {
    input,
    events: allEvents,
    serializeState: (s) => JSON.stringify([s.value, s.context]),
  });
  return paths.map((path) => {
    const events = path.steps
      .map((s) => s.event)
      .filter((e) => !String(e.type).startsWith("xstate."));
    let state: MachineState = start(input);
    const steps: Step[] = [];
    for (const event of events) {
      const next = step(state, event);
      steps.push(next);
      state = next;
    }
    return { events, steps, final: state };
  });
}

const ENTERED_BY: Record<string, ReadonlyArray<SnapshotEvent["type"]>> = {
  Frozen: ["FROZEN"],
  DisksSnapshotted: ["DISKS_SNAPSHOTTED"],
  MemorySaved: ["MEMORY_SAVED"],
  Thawed: ["THAWED"],
  Succeeded: ["COMPLETED"],
};

for (const input of inputs) {
  describe(`phase machine paths (memory: ${input.memory}, ${input.memoryMode}, quiesce: ${input.quiesce})`, () => {
    const paths = pathsFor(input);
    const finished = paths.filter((p) => isFinal(p.final.phase));

    it("has paths to both Succeeded and Failed", () => {
      expect(finished.some((p) => p.final.phase === "Succeeded")).to.equal(true);
      expect(finished.some((p) => p.final.phase === "Failed")).to.equal(true);
    });

    it("anything that froze ends thawed: by a THAWED event or a thaw compensation", () => {
      for (const path of finished) {
        const froze = path.steps.some((s) => s.context.frozenAt !== undefined);
        if (!froze) continue;
        const thawEvent = path.events.some((e) => e.type === "THAWED");
        const thawCompensation = path.steps.some((s) => s.compensations.includes("thaw"));
        expect(thawEvent || thawCompensation, narrate(path)).to.equal(true);
      }
    });

    it("an armed freeze that failed or timed out is still thawed (a late freeze may land)", () => {
      for (const path of finished) {
        if (path.final.phase !== "Failed" || path.final.context.freezeDeadline === undefined)
          continue;
        const last = path.steps.at(-1)!;
        const stillFrozen = mayBeFrozen(path.steps.at(-2)?.context ?? start(input).context);
        // UNQUIESCED is reported only once no freeze of ours can be in the guest (the effect
        // thawed a failed freeze itself, or the freeze was someone else's, not ours to thaw).
        if (stillFrozen && path.events.at(-1)!.type !== "UNQUIESCED")
          expect(last.compensations, narrate(path)).to.include("thaw");
      }
    });

    it("a freeze that was not ours (UNQUIESCED after arming) is never thawed by a compensation", () => {
      for (const path of finished.filter((p) => p.events.at(-1)?.type === "UNQUIESCED")) {
        expect(path.steps.at(-1)!.compensations, narrate(path)).to.not.include("thaw");
      }
    });

    it("vCPUs we may have paused end running: MEMORY_SAVED (or live, MEMORY_CAPTURED) resumed them or a resume compensation runs", () => {
      if (!input.memory) return;
      for (const path of finished.filter((p) => p.final.phase === "Failed")) {
        const c = path.final.context;
        const wasRunning =
          c.freezeDeadline !== undefined ||
          (c.unquiesced !== undefined &&
            !["DomainPaused", "DomainOffline"].includes(c.unquiesced.reason));
        if (!wasRunning || c.resumedAt !== undefined) continue;
        expect(path.steps.at(-1)!.compensations, narrate(path)).to.include("resumeVcpus");
      }
    });

    it("resumes the vCPUs before thawing (a paused guest's agent cannot thaw)", () => {
      for (const path of paths) {
        for (const s of path.steps) {
          const r = s.compensations.indexOf("resumeVcpus");
          const t = s.compensations.indexOf("thaw");
          if (r >= 0 && t >= 0) expect(r).to.be.lessThan(t);
        }
      }
    });

    it("no phase is claimed without its effect's event", () => {
      for (const path of paths) {
        let previous = "Pending";
        path.steps.forEach((s, i) => {
          if (s.phase !== previous && ENTERED_BY[s.phase]) {
            expect(ENTERED_BY[s.phase], narrate(path)).to.include(path.events[i]!.type);
          }
          previous = s.phase;
        });
      }
    });

    it("a failure always removes this attempt's artefacts and records a reason", () => {
      for (const path of finished.filter((p) => p.final.phase === "Failed")) {
        expect(path.steps.at(-1)!.compensations, narrate(path)).to.include("removeArtefacts");
        expect(path.final.context.error?.reason, narrate(path)).to.be.a("string");
      }
    });

    if (input.memory) {
      it("memory: true never reaches Succeeded without MemorySaved", () => {
        for (const path of finished.filter((p) => p.final.phase === "Succeeded")) {
          expect(
            path.steps.map((s) => s.phase),
            narrate(path),
          ).to.include("MemorySaved");
        }
      });
    } else {
      it("memory: false never claims MemorySaved", () => {
        for (const path of paths)
          expect(path.steps.map((s) => s.phase)).to.not.include("MemorySaved");
      });
    }

    if (input.quiesce === "Disabled") {
      it("quiesce: Disabled never freezes", () => {
        for (const path of paths) expect(path.steps.map((s) => s.phase)).to.not.include("Frozen");
      });
    }

    if (input.quiesce === "Required") {
      it("quiesce: Required succeeds only frozen, or with the guest shut off", () => {
        for (const path of finished.filter((p) => p.final.phase === "Succeeded")) {
          const c = path.final.context;
          expect(
            c.quiesced === true || c.unquiesced?.reason === "DomainOffline",
            narrate(path),
          ).to.equal(true);
        }
      });
    }

    it("status never claims Frozen/Thawed for a snapshot taken without a freeze", () => {
      for (const path of finished.filter((p) => p.final.context.quiesced === false)) {
        const phases = path.steps.map((s) => s.phase);
        expect(phases, narrate(path)).to.not.include("Frozen");
        expect(phases, narrate(path)).to.not.include("Thawed");
      }
    });
  });
}

function narrate(path: Replayed): string {
  return (
    path.events.map((e) => e.type + ("reason" in e ? `(${e.reason})` : "")).join(" → ") +
    ` ⇒ ${path.final.phase}`
  );
}
