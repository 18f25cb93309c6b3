// Where an image or a group lives, and the `pool[/namespace]/name[@snap]` specs the CLI takes.
// Every constructor validates its names, so a spec that exists is safe to put on a command line.
import { assertValidName } from "./names.ts";

export interface ImageSpec {
  readonly pool: string;
  /** RADOS namespace; absent or "" is the pool's default namespace. */
  readonly namespace?: string;
  readonly image: string;
}

export interface GroupSpec {
  readonly pool: string;
  readonly namespace?: string;
  readonly group: string;
}

/** `pool` or `pool/namespace`. */
export function poolPath(pool: string, namespace?: string): string {
  assertValidName("pool", pool);
  if (namespace) assertValidName("namespace", namespace);
  return namespace ? `${pool}/${namespace}` : pool;
}

/** `pool[/namespace]/image`. */
export function imagePath(spec: ImageSpec): string {
  assertValidName("image", spec.image);
  return `${poolPath(spec.pool, spec.namespace)}/${spec.image}`;
}

/** `pool[/namespace]/image@snapshot`. */
export function imageSnapPath(spec: ImageSpec, snapshot: string): string {
  assertValidName("snapshot", snapshot);
  return `${imagePath(spec)}@${snapshot}`;
}

/** `pool[/namespace]/group`. */
export function groupPath(spec: GroupSpec): string {
  assertValidName("group", spec.group);
  return `${poolPath(spec.pool, spec.namespace)}/${spec.group}`;
}

/** `pool[/namespace]/group@snapshot`. */
export function groupSnapPath(spec: GroupSpec, snapshot: string): string {
  assertValidName("snapshot", snapshot);
  return `${groupPath(spec)}@${snapshot}`;
}

/** Validates every name of an image spec, throwing `InvalidName` on the first bad one. */
export function assertValidImageSpec(spec: ImageSpec): void {
  imagePath(spec);
}

/** The default namespace is spelled "" by the CLI's JSON and absent in our specs: one spelling. */
export function sameNamespace(a: string | undefined, b: string | undefined): boolean {
  return (a ?? "") === (b ?? "");
}
