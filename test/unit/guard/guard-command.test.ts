// The guard is started from wherever the client module runs: compiled JavaScript runs the
// compiled guard with plain node; TypeScript runs the TypeScript guard through tsx, found from
// the module rather than from the working directory (which a controller does not choose).
import { expect } from "chai";
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";

import { guardCommand } from "../../../src/guard/guard-command.ts";

describe("guard command", () => {
  it("runs the compiled guard next to a compiled client with plain node", () => {
    const { command, args } = guardCommand("file:///opt/vmsnap/dist/src/guard/thaw-guard.js");
    expect(command).to.equal(process.execPath);
    expect(args).to.deep.equal(["/opt/vmsnap/dist/src/guard/guard-main.js"]);
  });

  it("runs the bundled guard beside the bundled controller (the image's dist/bundle/)", () => {
    const { command, args } = guardCommand("file:///app/dist/bundle/main.js");
    expect(command).to.equal(process.execPath);
    expect(args).to.deep.equal(["/app/dist/bundle/guard-main.js"]);
  });

  it("runs the TypeScript guard next to a TypeScript client through tsx", () => {
    const client = new URL("../../../src/guard/thaw-guard.ts", import.meta.url).href;
    const { command, args } = guardCommand(client);
    expect(command).to.equal(process.execPath);
    expect(args).to.have.length(3);
    const [flag, loader, entry] = args;
    expect(flag).to.equal("--import");
    expect(existsSync(fileURLToPath(loader!)), `${loader} exists`).to.equal(true);
    expect(loader).to.match(/\/node_modules\/tsx\//);
    expect(entry).to.equal(fileURLToPath(new URL("./guard-main.ts", client)));
    expect(existsSync(entry!)).to.equal(true);
  });
});
