// The runtime settings the deployment gives the controller, read from the files that set them so
// tests and benchmarks follow any change: the node flags of the Dockerfile's ENTRYPOINT and the
// process-tuning variables (MALLOC_*, UV_*, NODE_OPTIONS) of the controller container in
// deploy/controller/daemonset.yaml.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { parseAllDocuments } from "yaml";
import { REPO_ROOT } from "../kube/control-plane.ts";

export interface DeployedRuntime {
  /** Node flags before the script in the Dockerfile's ENTRYPOINT, e.g. --max-semi-space-size=1. */
  readonly nodeFlags: string[];
  /** Runtime-tuning variables of the controller container (literal values only). */
  readonly env: Record<string, string>;
}

/** The node flags and runtime variables the deployment runs the controller with. */
export function deployedRuntime(): DeployedRuntime {
  const dockerfile = readFileSync(join(REPO_ROOT, "Dockerfile"), "utf8");
  const entrypoint = /^ENTRYPOINT\s+(\[.*\])\s*$/m.exec(dockerfile)?.[1];
  const argv = entrypoint ? (JSON.parse(entrypoint) as string[]) : [];
  const script = argv.findIndex((a) => a.endsWith(".js"));
  const nodeFlags = argv[0] === "node" && script > 0 ? argv.slice(1, script) : [];
  const env: Record<string, string> = {};
  const manifest = readFileSync(join(REPO_ROOT, "deploy/controller/daemonset.yaml"), "utf8");
  for (const doc of parseAllDocuments(manifest)) {
    const containers = (doc.toJS() as DaemonSetLike | null)?.spec?.template?.spec?.containers ?? [];
    for (const c of containers.filter((c) => c.name === "controller")) {
      for (const e of c.env ?? []) {
        if (/^(MALLOC_|UV_|NODE_OPTIONS$)/.test(e.name) && typeof e.value === "string")
          env[e.name] = e.value;
      }
    }
  }
  return { nodeFlags, env };
}

interface DaemonSetLike {
  spec?: {
    template?: {
      spec?: {
        containers?: Array<{ name: string; env?: Array<{ name: string; value?: unknown }> }>;
      };
    };
  };
}
