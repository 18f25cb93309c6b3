// The guard's command line is written by the client and read by the guard: whatever the client
// configures must arrive unchanged, and a guard started wrongly must refuse to run.
import { expect } from "chai";

import { fromArgv, toArgv, type GuardConfig } from "../../../src/guard/guard-args.ts";
import { GUARD_THAW_POLICY } from "../../../src/hypervisor/thaw.ts";

describe("guard arguments", () => {
  it("carry a configuration unchanged from client to guard", () => {
    const config: GuardConfig = {
      uri: "test+unix:///default?socket=/run/x/libvirt-sock",
      attempts: 3,
      retryDelayMs: 7,
      maxRetryDelayMs: 70,
      callTimeoutMs: 700,
    };
    expect(fromArgv(toArgv(config))).to.deep.equal(config);
  });

  it("carry an unbounded policy as `--attempts unbounded`", () => {
    const config: GuardConfig = { uri: "u", ...GUARD_THAW_POLICY };
    const argv = toArgv(config);
    expect(argv[argv.indexOf("--attempts") + 1]).to.equal("unbounded");
    expect(fromArgv(toArgv(config)).attempts).to.equal(Number.POSITIVE_INFINITY);
  });

  it("default to the guard's thaw policy, which never gives up", () => {
    expect(fromArgv(["--uri", "qemu:///system"])).to.deep.equal({
      uri: "qemu:///system",
      ...GUARD_THAW_POLICY,
    });
  });

  it("carry the server mode's socket, and leave it out when spawned", () => {
    const config = fromArgv(["--uri", "qemu:///system", "--listen", "/run/vmsnap/guard.sock"]);
    expect(config.listen).to.equal("/run/vmsnap/guard.sock");
    expect(fromArgv(toArgv(config))).to.deep.equal(config);
    expect(toArgv({ uri: "u", ...GUARD_THAW_POLICY })).not.to.include("--listen");
  });

  for (const [what, argv] of [
    ["no uri", ["--attempts", "3"]],
    ["a relative socket path", ["--uri", "u", "--listen", "guard.sock"]],
    ["a socket path too long for sun_path", ["--uri", "u", "--listen", `/${"x".repeat(107)}`]],
    ["a zero attempt count", ["--uri", "u", "--attempts", "0"]],
    ["an attempt count that is a word", ["--uri", "u", "--attempts", "forever"]],
    ["a fractional timeout", ["--uri", "u", "--call-timeout-ms", "1.5"]],
    ["an unknown option", ["--uri", "u", "--thaw-never"]],
  ] as const) {
    it(`refuse ${what}`, () => {
      expect(() => fromArgv(argv)).to.throw();
    });
  }
});
