// What a previous agent process may have left frozen or paused, found from status alone and
// settled with the hypervisor alone: no thaw guard, no informer, no worker. An agent runs it
// first thing at start-up — before it waits for its guard, which may be down too (a pod whose
// containers were both killed, a sidecar restarting) — and again from the controller's
// recovery once its cache has synced.
import type { VMRestore } from "../api/restore-types.ts";
import type { VMSnapshot } from "../api/types.ts";
import type { Hypervisor } from "../hypervisor/connection.ts";
import { thawConfirmed, thawGuest, type ThawPolicy } from "../hypervisor/thaw.ts";
import { objectKey } from "../kube/resource.ts";
import { mayBeFrozen, mayHavePaused } from "../machine/context.ts";
import { isFinal } from "../machine/step.ts";
import { awaitingThaw } from "../restore/context.ts";
import { restoreStateFromStatus } from "../restore/status.ts";
import { stateFromStatus } from "../snapshot/status.ts";

export type LeftoverHypervisor = Pick<Hypervisor, "domainInfo" | "resume" | "fsThaw">;

export interface LeftoverOptions {
  readonly policy: ThawPolicy;
  readonly now: () => number;
  readonly log?: (message: string, fields: Record<string, unknown>) => void;
}

/** One guest to settle: thaw it (resuming first if asked), or only resume it. */
interface Leftover {
  readonly key: string;
  readonly domain: string;
  readonly uuid?: string;
  readonly thaw: boolean;
  readonly resume: boolean;
}

/** Snapshots in flight whose guest may be frozen, or paused by the attempt. */
export function snapshotLeftovers(snapshots: readonly VMSnapshot[], now: number): Leftover[] {
  const found: Leftover[] = [];
  for (const snapshot of snapshots) {
    const { phase, context } = stateFromStatus(snapshot, now);
    if (isFinal(phase)) continue;
    const resume = mayHavePaused(context);
    const thaw = mayBeFrozen(context);
    if (!thaw && !resume) continue;
    found.push({
      key: objectKey(snapshot),
      domain: snapshot.spec.source.domain,
      ...(context.domainUUID === undefined ? {} : { uuid: context.domainUUID }),
      // Paused without a freeze: resume only, never thaw a freeze that is not ours.
      thaw,
      resume,
    });
  }
  return found;
}

/** Restores on `node` whose guest was resumed from a frozen RAM image and not yet thawed. A
 *  restored guest still paused is left to its restore, which arms the guard before resuming. */
export function restoreLeftovers(
  restores: readonly VMRestore[],
  node: string,
  now: number,
): Leftover[] {
  const found: Leftover[] = [];
  for (const restore of restores) {
    if (restore.status?.node !== node) continue;
    const { context } = restoreStateFromStatus(restore, now);
    if (context.resumedAt === undefined || !awaitingThaw(context)) continue;
    if (context.targetDomain === undefined) continue;
    found.push({
      key: objectKey(restore),
      domain: context.targetDomain,
      ...(context.targetUUID === undefined ? {} : { uuid: context.targetUUID }),
      thaw: true,
      resume: false,
    });
  }
  return found;
}

/** Settles each leftover in turn; never throws (each one is logged). */
export async function settleLeftovers(
  hv: LeftoverHypervisor,
  leftovers: readonly Leftover[],
  o: LeftoverOptions,
): Promise<void> {
  for (const leftover of leftovers) {
    const { key, domain } = leftover;
    if (!leftover.thaw) {
      await resumeIfPaused(hv, domain, o.policy.callTimeoutMs).catch((err: unknown) =>
        o.log?.("could not resume a guest left paused by a previous instance", {
          key,
          domain,
          error: String(err),
        }),
      );
      continue;
    }
    const result = await thawGuest(
      hv,
      domain,
      leftover.resume,
      o.policy,
      leftover.uuid === undefined ? {} : { uuid: leftover.uuid },
    );
    o.log?.(
      thawConfirmed(result.outcome)
        ? "thawed a guest left frozen by a previous instance"
        : "could not confirm the thaw of a guest left by a previous instance",
      { key, domain, ...result, lastError: undefined },
    );
  }
}

/** Resumes the domain if it is paused; true when it did. */
export async function resumeIfPaused(
  hv: Pick<Hypervisor, "domainInfo" | "resume">,
  domain: string,
  timeoutMs: number,
): Promise<boolean> {
  const info = await hv.domainInfo(domain, { timeoutMs });
  if (info.state !== "paused") return false;
  await hv.resume(domain, { timeoutMs });
  return true;
}
