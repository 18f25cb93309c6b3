// The tenancy flags: safe defaults, environment fallbacks, and refusals naming the flag.
import { expect } from "chai";
import { parseArgs } from "node:util";

import { parseTenancyOptions, TENANCY_FLAGS } from "../../../src/tenancy/agent-options.ts";
import { allowsUnowned } from "../../../src/tenancy/unowned-policy.ts";

const parse = (argv: string[], env: NodeJS.ProcessEnv = {}) =>
  parseTenancyOptions(parseArgs({ args: argv, options: TENANCY_FLAGS, strict: true }).values, env);

describe("the tenancy flags", () => {
  it("default to: nobody may snapshot unowned domains, 1 GiB reserve, no namespace cap", () => {
    const options = parse([]);
    expect(options.unownedDomains).to.deep.equal({ allow: "none" });
    expect(options).to.include({ memoryReserveBytes: 2 ** 30, maxSnapshotsPerNamespace: 0 });
  });

  it("take the opt-in from the flag, else from $VMSNAP_ALLOW_UNOWNED_DOMAINS", () => {
    expect(allowsUnowned(parse(["--allow-unowned-domains=demo"]).unownedDomains, "demo")).to.equal(
      true,
    );
    const fromEnv = parse([], { VMSNAP_ALLOW_UNOWNED_DOMAINS: "*" }).unownedDomains;
    expect(fromEnv).to.deep.equal({ allow: "all" });
    const flagWins = parse(["--allow-unowned-domains="], { VMSNAP_ALLOW_UNOWNED_DOMAINS: "*" });
    expect(flagWins.unownedDomains).to.deep.equal({ allow: "none" });
  });

  it("read sizes and caps", () => {
    expect(parse(["--memory-reserve=512Mi", "--max-snapshots-per-namespace=2"])).to.include({
      memoryReserveBytes: 512 * 2 ** 20,
      maxSnapshotsPerNamespace: 2,
    });
  });

  it("refuse bad values with the flag's name", () => {
    expect(() => parse(["--allow-unowned-domains=Team_A"])).to.throw(
      /^--allow-unowned-domains: "Team_A"/,
    );
    expect(() => parse(["--memory-reserve=lots"])).to.throw(/^--memory-reserve: "lots"/);
    expect(() => parse(["--max-snapshots-per-namespace=-1"])).to.throw(
      /^--max-snapshots-per-namespace: must be/,
    );
  });
});
