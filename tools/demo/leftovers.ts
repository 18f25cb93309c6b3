// The demo's own folder, and what a demo that was killed outright (SIGKILL, a closed terminal,
// three Ctrl-Cs) left behind. The shared harnesses already reap their leftovers by owner pid
// (control plane, Ceph, guest domains, secrets, work folders); the one thing they cannot find is
// the controller, whose run folder the demo records here, so the next demo stops it by pid file.
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { isAlive, stopLeftover } from "../../test/support/processes.ts";

const PREFIX = "vmsnap-demo-";
const CONTROLLER_RUN_DIR = "controller-run-dir";
/** startDaemon's name for the controller (test/support/controller/process.ts). */
const CONTROLLER_DAEMON = "vmsnap-controller";

/** A fresh folder named after this process, after removing those of demos that are gone. */
export async function createDemoDir(): Promise<{ dir: string; reaped: number }> {
  let reaped = 0;
  for (const name of readdirSync(tmpdir())) {
    const owner = Number(new RegExp(`^${PREFIX}(\\d+)-`).exec(name)?.[1]);
    if (!(owner > 0) || owner === process.pid || isAlive(owner)) continue;
    const dir = join(tmpdir(), name);
    const runDir = readIfExists(join(dir, CONTROLLER_RUN_DIR));
    if (runDir) {
      await stopLeftover(runDir, CONTROLLER_DAEMON);
      rmSync(runDir, { recursive: true, force: true });
    }
    rmSync(dir, { recursive: true, force: true });
    reaped += 1;
  }
  return { dir: mkdtempSync(join(tmpdir(), `${PREFIX}${process.pid}-`)), reaped };
}

/** Notes where the controller keeps its pid file, for the reaping above. */
export function recordControllerRunDir(demoDir: string, runDir: string): void {
  writeFileSync(join(demoDir, CONTROLLER_RUN_DIR), runDir);
}

function readIfExists(path: string): string | undefined {
  return existsSync(path) ? readFileSync(path, "utf8").trim() : undefined;
}
