// Sums mocha's "N passing / N failing / N pending" lines from a test log into the one closing
// line CI reads: "N passed, N failed, N skipped". Exits non-zero when the log shows a failure or
// no test ran, so a silent suite can never look green.
import { readFileSync } from "node:fs";

// Mocha colours its output when it thinks a terminal (or CI) watches: strip the escapes first.
// eslint-disable-next-line no-control-regex
const log = readFileSync(process.argv[2]!, "utf8").replace(/\x1b\[[0-9;]*m/g, "");
const sum = (word: string) =>
  [...log.matchAll(new RegExp(`^\\s+(\\d+) ${word}\\b`, "gm"))].reduce(
    (n, m) => n + Number(m[1]),
    0,
  );
const passed = sum("passing");
const failed = sum("failing");
const skipped = sum("pending");
console.log(`${passed} passed, ${failed} failed, ${skipped} skipped`);
process.exit(failed > 0 || passed === 0 ? 1 : 0);
