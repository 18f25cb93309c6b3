// The agent image as a test gets it: `make image` (buildah; a fresh machine builds it here, a
// warm one only checks its layer cache), and the reference it reports having built.
import { REPO_ROOT, run } from "../kube/control-plane.ts";

export interface BuiltImage {
  /** As `make image` names it, e.g. localhost/vmsnap-controller:0.1.0. */
  readonly ref: string;
  /** Its `image:` lines: what was built, the size, the versions inside. */
  readonly summary: readonly string[];
}

export async function makeImage(): Promise<BuiltImage> {
  const built = await run("make", ["-C", REPO_ROOT, "-s", "image"]);
  if (built.code !== 0) throw new Error(`make image failed:\n${built.stderr.slice(-4000)}`);
  const summary = `${built.stdout}\n${built.stderr}`
    .split("\n")
    .filter((l) => l.startsWith("image:"));
  // `image: built localhost/vmsnap-controller:0.1.0 from <base> in N s` (tools/image/build.sh)
  const ref = summary.map((l) => /^image: built (\S+) from/.exec(l)?.[1]).find(Boolean);
  if (!ref) throw new Error(`make image did not say what it built:\n${summary.join("\n")}`);
  return { ref, summary };
}
