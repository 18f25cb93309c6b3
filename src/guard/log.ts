// The guard's log: one JSON object per line on stderr, so the controller's log pipeline (and a
// human after a crash) can tell what the guard did to which guest, and when. A broken stderr
// (the reader died) must never take the guard down: lines are then dropped.

export type Level = "info" | "warn" | "error";
export type Log = (level: Level, msg: string, fields?: Readonly<Record<string, unknown>>) => void;

/** A logger writing JSON lines through `write`; failures of `write` are swallowed. */
export function jsonLog(
  write: (line: string) => void,
  component = "thaw-guard",
  now: () => Date = () => new Date(),
): Log {
  return (level, msg, fields = {}) => {
    const line = JSON.stringify({ time: now().toISOString(), level, component, msg, ...fields });
    try {
      write(`${line}\n`);
    } catch {
      // Nobody is reading: the guard's work matters more than its log.
    }
  };
}
