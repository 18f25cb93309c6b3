// Go-style durations ("10s", "1m30s", "500ms", "1h") as the CRD accepts them, in milliseconds.

const UNIT_MS: Record<string, number> = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000 };
const WHOLE = /^(?:\d+(?:\.\d+)?(?:ms|s|m|h))+$/;
const PART = /(\d+(?:\.\d+)?)(ms|s|m|h)/g;

/**
 * Parses a duration such as `1m30s` into milliseconds.
 * @example parseDuration("1m30s") // 90000
 * @throws when the text is not a duration (the CRD's pattern normally prevents that)
 */
export function parseDuration(text: string): number {
  if (!WHOLE.test(text)) throw new Error(`not a duration: ${JSON.stringify(text)}`);
  let total = 0;
  for (const [, amount, unit] of text.matchAll(PART)) total += Number(amount) * UNIT_MS[unit!]!;
  return Math.round(total);
}
