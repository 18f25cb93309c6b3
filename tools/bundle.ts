// Bundles the controller and the thaw guard into dist/bundle/{main,guard-main}.js, the files the
// image runs. Why a bundle: `@kubernetes/client-node` loads all of its ~1,000 modules (25 MB of
// generated API and model code) when imported, which cost the agent ~80 MiB of RSS before it
// did anything; tree-shaken, the parts vmsnap uses are ~3 MB. See README "Choices worth knowing".
//
// Identifiers are kept (no mangling) so stack traces and logs stay readable; a source map sits
// beside each bundle for `node --enable-source-maps`. The libvirt addon stays a file on disk:
// src/hypervisor/native.ts finds native/build/Release by walking up from the bundle.
//
// Usage: node --import tsx tools/bundle.ts [outdir] [--bench]   (default dist/bundle)
// --bench also bundles bench/lib/bench-main.ts (the agent with benchmark-only storage) as
// bench-main.js, for the benchmarks that run the bundle; the image is built without it.
import { build } from "esbuild";
import { writeFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const args = process.argv.slice(2);
const bench = args.includes("--bench");
const outdir = resolve(args.find((a) => a !== "--bench") ?? join(root, "dist", "bundle"));

await build({
  absWorkingDir: root,
  entryPoints: {
    main: "src/main.ts",
    "guard-main": "src/guard/guard-main.ts",
    ...(bench ? { "bench-main": "bench/lib/bench-main.ts" } : {}),
  },
  outdir,
  bundle: true,
  platform: "node",
  format: "esm",
  target: "node22.19",
  minifyWhitespace: true,
  minifySyntax: true,
  sourcemap: "linked",
  // Bundled CommonJS dependencies call require(); ESM output has none of its own.
  banner: {
    js: [
      'import { createRequire as __vmsnapRequire } from "node:module";',
      "const require = __vmsnapRequire(import.meta.url);",
    ].join("\n"),
  },
  logLevel: "warning",
});
// The bundles are ES modules named .js: this marks the folder so, wherever it is copied.
writeFileSync(join(outdir, "package.json"), '{ "type": "module" }\n');
console.log(
  `bundled src/main.ts, src/guard/guard-main.ts${bench ? " and bench/lib/bench-main.ts" : ""} into ${outdir}`,
);
