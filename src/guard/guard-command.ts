// How to start the guard process from wherever this module runs: dist/bundle/guard-main.js
// beside the bundled controller in production (a bundle's import.meta.url is the bundle's),
// dist/src/guard/guard-main.js when compiled by tsc, src/guard/guard-main.ts through tsx in
// development and tests. Resolved from this file, never from the working directory.
import { createRequire } from "node:module";
import { fileURLToPath, pathToFileURL } from "node:url";

export interface GuardCommand {
  readonly command: string;
  readonly args: readonly string[];
}

/** The node command line that runs guard-main next to this module. */
export function guardCommand(moduleUrl: string = import.meta.url): GuardCommand {
  const typescript = moduleUrl.endsWith(".ts");
  const entry = fileURLToPath(
    new URL(typescript ? "./guard-main.ts" : "./guard-main.js", moduleUrl),
  );
  if (!typescript) return { command: process.execPath, args: [entry] };
  // tsx is found from here, not from the cwd: `--import tsx` would resolve it from the cwd.
  // (createRequire, not import.meta.resolve: under tsx's CommonJS transform the latter is absent.)
  const tsx = pathToFileURL(createRequire(moduleUrl).resolve("tsx")).href;
  return { command: process.execPath, args: ["--import", tsx, entry] };
}
