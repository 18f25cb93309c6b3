// Waiting for one of vmsnap's resources to reach Succeeded or Failed, as a user polling
// `kubectl get` would; on a timeout, the last status and the agent's log say why.
import { waitFor } from "../processes.ts";

export async function waitUntilFinal<T extends { status?: { phase?: string } }>(
  what: string,
  get: () => Promise<T>,
  timeoutMs: number,
  agentLog?: () => string,
): Promise<T> {
  let last: T | undefined;
  try {
    await waitFor(
      `${what} to finish`,
      async () => {
        last = await get();
        return last.status?.phase === "Succeeded" || last.status?.phase === "Failed";
      },
      timeoutMs,
      100,
    );
  } catch (err) {
    // What the agent said is the first thing anyone debugging this wants to see.
    const log = agentLog ? `\n--- controller log ---\n${agentLog().slice(-6000)}` : "";
    throw new Error(
      `${(err as Error).message}\nlast status: ${JSON.stringify(last?.status)}${log}`,
      {
        cause: err,
      },
    );
  }
  return last!;
}
