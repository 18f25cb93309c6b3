// What the agent exports, read from the metrics module itself, and which metric and label names a
// PromQL expression uses: lets tests hold dashboards and alerts to the metrics that exist.
import { createMetrics } from "../../../src/metrics/index.ts";

/** Labels every series carries from its scrape target (Prometheus and the ServiceMonitor). */
export const TARGET_LABELS = ["job", "instance", "node", "namespace", "pod", "service"];

/** Metric families by name, with their label names and type. */
export function exportedFamilies(): Map<string, { type: string; labels: string[] }> {
  const families = new Map<string, { type: string; labels: string[] }>();
  for (const metric of createMetrics().registry.getMetricsAsArray()) {
    // prom-client keeps these on the instance; its typings do not expose them.
    const { name, type, labelNames } = metric as unknown as {
      name: string;
      type: string;
      labelNames: string[];
    };
    families.set(name, { type, labels: [...labelNames] });
  }
  // Prometheus' own per-target series.
  families.set("up", { type: "gauge", labels: [] });
  return families;
}

const PROMQL_FUNCTIONS_AND_KEYWORDS = new Set([
  "sum",
  "max",
  "min",
  "avg",
  "count",
  "rate",
  "increase",
  "irate",
  "histogram_quantile",
  "absent",
  "by",
  "without",
  "on",
  "ignoring",
  "group_left",
  "group_right",
  "and",
  "or",
  "unless",
  "bool",
  "offset",
  "max_over_time",
  "min_over_time",
  "avg_over_time",
  "clamp_min",
  "label_values",
  "topk",
  "bottomk",
  "sort",
  "sort_desc",
  "time",
  "vector",
  "scalar",
]);

/** The metric names an expression reads, histogram sample suffixes removed where they apply. */
export function metricsIn(expr: string, families: Map<string, unknown>): string[] {
  const withoutStrings = expr.replace(/"(?:[^"\\]|\\.)*"/g, '""');
  const withoutGroupings = withoutStrings.replace(/\b(by|without|on|ignoring)\s*\([^)]*\)/g, "$1");
  const withoutSelectors = withoutGroupings.replace(/\{[^}]*\}/g, "{}");
  const names = new Set<string>();
  for (const [, name] of withoutSelectors.matchAll(/(?<![\w.$])([a-zA-Z_:][a-zA-Z0-9_:]*)/g)) {
    if (PROMQL_FUNCTIONS_AND_KEYWORDS.has(name!) || /^\d/.test(name!)) continue;
    const family = families.has(name!) ? name! : name!.replace(/_(bucket|sum|count)$/, "");
    names.add(family);
  }
  return [...names];
}

/** Label names used in `by (...)`, `without (...)` and selectors `{a="..."}` of an expression. */
export function labelsIn(expr: string): string[] {
  const labels = new Set<string>();
  for (const [, list] of expr.matchAll(/\b(?:by|without)\s*\(([^)]*)\)/g)) {
    for (const l of list!.split(",")) if (l.trim()) labels.add(l.trim());
  }
  for (const [, body] of expr.matchAll(/\{([^}]*)\}/g)) {
    for (const [, l] of body!.matchAll(/([a-zA-Z_]\w*)\s*(?:=~|!~|!=|=)/g)) labels.add(l!);
  }
  return [...labels];
}
