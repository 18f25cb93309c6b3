// The one Prometheus text reader the tests and benchmarks share: what it takes from an
// exposition, and what it refuses.
import { expect } from "chai";
import { bucketBounds, parseExposition, sumOf, valueOf } from "../../support/exposition.ts";

const TEXT = [
  "# HELP vmsnap_x_seconds A histogram.",
  "# TYPE vmsnap_x_seconds histogram",
  'vmsnap_x_seconds_bucket{le="0.1",phase="Frozen"} 1',
  'vmsnap_x_seconds_bucket{le="+Inf",phase="Frozen"} 3',
  'vmsnap_x_seconds_sum{phase="Frozen"} 1.5',
  'vmsnap_errors_total{code="55",message="a \\"quoted\\" line\\nand a back\\\\slash"} 2',
  'vmsnap_errors_total{code="86",message=""} 5 1700000000000',
  "",
].join("\n");

describe("exposition reader", () => {
  it("reads types, labels with escapes, +Inf and a trailing timestamp", () => {
    const e = parseExposition(TEXT);
    expect(e.types.get("vmsnap_x_seconds")).to.equal("histogram");
    expect(valueOf(e, "vmsnap_x_seconds_bucket", { le: "+Inf" })).to.equal(3);
    expect(bucketBounds(e, "vmsnap_x_seconds")).to.deep.equal([0.1]);
    const [withEscapes] = e.samples.filter((s) => s.labels.code === "55");
    expect(withEscapes!.labels.message).to.equal('a "quoted" line\nand a back\\slash');
    expect(valueOf(e, "vmsnap_errors_total", { code: "86" })).to.equal(5);
  });

  it("sums every sample of a name whose labels match", () => {
    const { samples } = parseExposition(TEXT);
    expect(sumOf(samples, "vmsnap_errors_total")).to.equal(7);
    expect(sumOf(samples, "vmsnap_errors_total", { code: "55" })).to.equal(2);
    expect(sumOf(samples, "absent_total")).to.equal(0);
  });

  it("refuses a line that is no sample, unless asked to be lenient", () => {
    const broken = `${TEXT}not a sample line at all\n`;
    expect(() => parseExposition(broken)).to.throw(/not an exposition line/);
    expect(parseExposition(broken, { lenient: true }).samples).to.have.length(5);
  });

  it("valueOf fails loudly when a series is missing or ambiguous", () => {
    const e = parseExposition(TEXT);
    expect(() => valueOf(e, "vmsnap_errors_total")).to.throw(/found 2/);
    expect(() => valueOf(e, "absent_total")).to.throw(/found 0/);
  });
});
