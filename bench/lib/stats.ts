// Summary statistics for benchmark samples. Percentiles are nearest-rank (the smallest sample
// with at least q of the samples at or below it), so every reported value is one that was
// actually measured.

export interface Summary {
  readonly n: number;
  readonly p50: number;
  readonly p90: number;
  readonly p99: number;
  readonly mean: number;
  readonly min: number;
  readonly max: number;
}

/** The nearest-rank q-quantile (0 < q ≤ 1) of `samples`; NaN when there are none. */
export function quantile(samples: readonly number[], q: number): number {
  if (samples.length === 0) return NaN;
  const sorted = [...samples].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))]!;
}

/** n, p50/p90/p99, mean, min and max of `samples`, rounded to `digits` decimals. */
export function summarize(samples: readonly number[], digits = 1): Summary {
  const r = (v: number) => round(v, digits);
  if (samples.length === 0)
    return { n: 0, p50: NaN, p90: NaN, p99: NaN, mean: NaN, min: NaN, max: NaN };
  return {
    n: samples.length,
    p50: r(quantile(samples, 0.5)),
    p90: r(quantile(samples, 0.9)),
    p99: r(quantile(samples, 0.99)),
    mean: r(samples.reduce((a, b) => a + b, 0) / samples.length),
    min: r(Math.min(...samples)),
    max: r(Math.max(...samples)),
  };
}

export function round(value: number, digits = 1): number {
  const f = 10 ** digits;
  return Math.round(value * f) / f;
}
