// One `rbd` call with its failure typed. When the CLI says ENOENT, we look at the cluster to
// learn what is missing (pool or namespace, image, group, or else the snapshot) rather than
// guessing from the message: a missing pool usually means wrong configuration, a missing
// snapshot usually means "already removed", and callers must be able to tell them apart.
import { mapRbdFailure, type ReasonOverrides } from "./error-map.ts";
import type { StorageErrorReason } from "./errors.ts";
import type { RbdRunner } from "./runner.ts";
import { imagePath, poolPath } from "./specs.ts";

/** What a command addressed; used only to find out what is missing after ENOENT. */
export interface Whereabouts {
  readonly pool: string;
  readonly namespace?: string;
  readonly image?: string;
  readonly group?: string;
  readonly snapshot?: string;
}

export interface CallOptions {
  readonly where?: Whereabouts;
  readonly overrides?: ReasonOverrides;
}

/** Runs `rbd args`; resolves with stdout, or throws a typed StorageError. */
export async function rbdCall(
  runner: RbdRunner,
  args: readonly string[],
  options: CallOptions = {},
): Promise<string> {
  const result = await runner(args);
  if (result.exitCode === 0) return result.stdout;
  const enoent =
    result.exitCode === 2 && options.where ? await locateMissing(runner, options.where) : undefined;
  throw mapRbdFailure(args, result, enoent, options.overrides);
}

/** Runs a `--format json` command and parses its output. */
export async function rbdJson<T>(
  runner: RbdRunner,
  args: readonly string[],
  options: CallOptions = {},
): Promise<T> {
  const stdout = await rbdCall(runner, [...args, "--format", "json"], options);
  return JSON.parse(stdout) as T;
}

/** Finds the outermost missing piece of `where`, checking pool, namespace, image, group in order. */
export async function locateMissing(
  runner: RbdRunner,
  where: Whereabouts,
): Promise<StorageErrorReason> {
  // `namespace ls` is cheap whatever the pool holds, and says both whether the pool exists and
  // which namespaces it has.
  const namespaces = await runner(["namespace", "ls", "--format", "json", poolPath(where.pool)]);
  if (namespaces.exitCode === 2) return "PoolNotFound";
  if (namespaces.exitCode !== 0) throw mapRbdFailure(["namespace", "ls", where.pool], namespaces);
  if (where.namespace) {
    const names = (JSON.parse(namespaces.stdout) as { name: string }[]).map((n) => n.name);
    if (!names.includes(where.namespace)) return "PoolNotFound";
  }
  if (where.image !== undefined) {
    const spec = imagePath({ pool: where.pool, namespace: where.namespace, image: where.image });
    const info = await runner(["info", "--format", "json", spec]);
    if (info.exitCode === 2) return "ImageNotFound";
    if (info.exitCode !== 0) throw mapRbdFailure(["info", spec], info);
  }
  if (where.group !== undefined) {
    const path = poolPath(where.pool, where.namespace);
    const groups = await runner(["group", "ls", "--format", "json", path]);
    if (groups.exitCode !== 0) throw mapRbdFailure(["group", "ls", path], groups);
    if (!(JSON.parse(groups.stdout) as string[]).includes(where.group)) return "GroupNotFound";
  }
  return where.snapshot !== undefined ? "SnapshotNotFound" : "Unknown";
}
