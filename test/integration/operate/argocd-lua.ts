// Runs an Argo CD health check (deploy/argocd/*.lua) as Argo CD does: the global `obj` set to the
// resource, the script's returned table `hs` read back, under a real Lua interpreter.
import { expect } from "chai";
import { join } from "node:path";
import { toLua, type JsonValue } from "./lua-table.ts";
import { REPO_ROOT, run } from "./run.ts";

export interface Health {
  status: string;
  message: string;
}

/** The health check in deploy/argocd/`file`, as a function of the object. */
export function argoHealthCheck(file: string): (obj: JsonValue) => Promise<Health> {
  const script = join(REPO_ROOT, "deploy/argocd", file);
  return async (obj) => {
    const harness = [
      `obj = ${toLua(obj)}`,
      `local hs = dofile(${toLua(script)})`,
      `io.write(tostring(hs.status), "\\n", tostring(hs.message))`,
    ].join("\n");
    const result = await run("lua5.4", ["-"], { input: harness });
    expect(result.code, result.stderr).to.equal(0);
    const [status = "", ...message] = result.stdout.split("\n");
    return { status, message: message.join("\n") };
  };
}
