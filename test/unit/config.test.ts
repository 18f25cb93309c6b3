// Configuration: flags win over environment, defaults fit a DaemonSet, bad values name the flag.
import { expect } from "chai";
import { ConfigError, parseConfig } from "../../src/config.ts";

describe("agent configuration", () => {
  it("takes the node name from NODE_NAME (the downward API) and fills defaults", () => {
    const config = parseConfig([], { NODE_NAME: "hv-1" });
    expect(config).to.deep.include({
      nodeName: "hv-1",
      libvirtUri: "qemu:///system",
      workers: 4,
      maxFrozenGuests: 4,
      metricsHost: "0.0.0.0",
      metricsPort: 8080,
      memoryDir: "/var/lib/vmsnap/memory",
    });
  });

  it("lets flags win over the environment", () => {
    const config = parseConfig(
      ["--node-name", "hv-2", "--libvirt-uri", "test:///default", "--metrics-bind-address", ":0"],
      {
        NODE_NAME: "hv-1",
        LIBVIRT_DEFAULT_URI: "qemu:///session",
      },
    );
    expect(config).to.deep.include({
      nodeName: "hv-2",
      libvirtUri: "test:///default",
      metricsPort: 0,
    });
  });

  const bad: Array<[string, string[], RegExp]> = [
    ["no node name", [], /--node-name/],
    ["zero workers", ["--node-name", "a", "--workers", "0"], /--workers/],
    ["fractional workers", ["--node-name", "a", "--workers", "1.5"], /--workers/],
    ["a bad log level", ["--node-name", "a", "--log-level", "loud"], /--log-level/],
    [
      "a bind address without port",
      ["--node-name", "a", "--metrics-bind-address", "localhost"],
      /--metrics-bind-address/,
    ],
    ["an unknown flag", ["--node-name", "a", "--frobnicate"], /frobnicate/],
    [
      "a relative guard socket",
      ["--node-name", "a", "--guard-socket", "guard.sock"],
      /--guard-socket/,
    ],
  ];
  for (const [what, argv, message] of bad) {
    it(`refuses ${what} with a message naming the flag`, () => {
      expect(() => parseConfig(argv, {})).to.throw(ConfigError, message);
    });
  }
});

describe("benchmark-only switches", () => {
  it("are not in the shipped agent: --bench-storage is refused as an unknown flag", () => {
    expect(() => parseConfig(["--node-name", "a", "--bench-storage", "noop"], {})).to.throw(
      ConfigError,
      /--bench-storage/,
    );
  });
});
