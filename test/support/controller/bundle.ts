// The controller as the image ships it: src/ bundled by tools/bundle.ts (esbuild), run with
// plain node. Built once per test process into a temporary folder laid out like the image's
// /app (dist/bundle/ beside native/build/Release, linked to this checkout's addon), so the
// work tree is left alone and the bundle finds the addon the way it does in the image.
import { execFile } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, symlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { REPO_ROOT } from "../kube/control-plane.ts";
import { onTeardown } from "../teardown.ts";

export interface ControllerBundle {
  /** dist/bundle/main.js: the controller's entry point. */
  readonly main: string;
  /** dist/bundle/guard-main.js: the thaw guard's (spawned by the controller, or a sidecar). */
  readonly guardMain: string;
  /** dist/bundle/bench-main.js: the controller with benchmark-only storage (never in the image). */
  readonly benchMain: string;
}

let built: Promise<ControllerBundle> | undefined;

export function bundleController(): Promise<ControllerBundle> {
  built ??= (async () => {
    const app = mkdtempSync(join(tmpdir(), "vmsnap-bundle-"));
    onTeardown(() => rmSync(app, { recursive: true, force: true }));
    const dir = join(app, "dist", "bundle");
    await promisify(execFile)(
      process.execPath,
      ["--import", "tsx", join(REPO_ROOT, "tools/bundle.ts"), dir, "--bench"],
      {
        cwd: REPO_ROOT,
      },
    );
    mkdirSync(join(app, "native", "build"), { recursive: true });
    symlinkSync(join(REPO_ROOT, "native/build/Release"), join(app, "native/build/Release"));
    return {
      main: join(dir, "main.js"),
      guardMain: join(dir, "guard-main.js"),
      benchMain: join(dir, "bench-main.js"),
    };
  })();
  return built;
}
