#!/usr/bin/env -S node --max-semi-space-size=1
// vmsnap-controller: the per-host agent's entry point, with the production storage backends.
// The wiring is src/agent.ts.
import { runFromCommandLine } from "./agent.ts";

await runFromCommandLine(process.argv.slice(2));
