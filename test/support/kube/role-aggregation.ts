// What kube-controller-manager's clusterrole-aggregation controller does, for the test control
// plane, which runs no controller-manager: every ClusterRole with an aggregationRule gets the
// rules of all ClusterRoles its selectors match. Without it the built-in admin/edit/view stay as
// bootstrapped and the vmsnap roles aggregated into them would grant nothing in tests.
import type { ControlPlane } from "./control-plane.ts";

interface ClusterRole {
  metadata: { name: string; labels?: Record<string, string> };
  rules?: unknown[];
  aggregationRule?: { clusterRoleSelectors?: Array<{ matchLabels?: Record<string, string> }> };
}

/** Runs one aggregation pass over the cluster's ClusterRoles, as the controller would. */
export async function aggregateClusterRoles(cp: ControlPlane): Promise<void> {
  const listed = await cp.kubectl(["get", "clusterroles", "-o", "json"]);
  if (listed.code !== 0) throw new Error(`listing ClusterRoles: ${listed.stderr}`);
  const roles = (JSON.parse(listed.stdout) as { items: ClusterRole[] }).items;
  for (const target of roles) {
    const selectors = target.aggregationRule?.clusterRoleSelectors;
    if (!selectors) continue;
    // The built-in roles select by matchLabels only; matchExpressions are not needed here.
    const matches = (role: ClusterRole) =>
      role.metadata.name !== target.metadata.name &&
      selectors.some((s) =>
        Object.entries(s.matchLabels ?? {}).every(([k, v]) => role.metadata.labels?.[k] === v),
      );
    const rules: unknown[] = [];
    const seen = new Set<string>();
    for (const source of roles
      .filter(matches)
      .sort((a, b) => a.metadata.name.localeCompare(b.metadata.name))) {
      for (const rule of source.rules ?? []) {
        const key = JSON.stringify(rule);
        if (seen.has(key)) continue;
        seen.add(key);
        rules.push(rule);
      }
    }
    const patched = await cp.kubectl([
      "patch",
      "clusterrole",
      target.metadata.name,
      "--type=merge",
      "-p",
      JSON.stringify({ rules }),
    ]);
    if (patched.code !== 0)
      throw new Error(`aggregating into ${target.metadata.name}: ${patched.stderr}`);
  }
}
