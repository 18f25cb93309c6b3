// The agent's tenancy and limits flags, parsed and validated here so src/config.ts only has to
// spread them in: which namespaces may snapshot unowned domains, the free-space reserve for
// memory images, and the per-namespace cap on snapshots in flight on this node.
import { parseByteSize } from "../limits/memory-space.ts";
import { parseUnownedDomainPolicy, type UnownedDomainPolicy } from "./unowned-policy.ts";

export interface TenancyOptions {
  /** --allow-unowned-domains: who may snapshot domains without an owner element (default nobody). */
  readonly unownedDomains: UnownedDomainPolicy;
  /** --memory-reserve: bytes the memory folder keeps free beyond a guest's RAM (default 1Gi). */
  readonly memoryReserveBytes: number;
  /** --max-snapshots-per-namespace: in flight at once per namespace on this node; 0 = no cap. */
  readonly maxSnapshotsPerNamespace: number;
}

/** For parseArgs' options. */
export const TENANCY_FLAGS = {
  "allow-unowned-domains": { type: "string" },
  "memory-reserve": { type: "string" },
  "max-snapshots-per-namespace": { type: "string" },
} as const;

export const TENANCY_USAGE = `  --allow-unowned-domains NS,..  namespaces that may snapshot domains without a vmsnap owner element in
                                their libvirt metadata, or * for all ($VMSNAP_ALLOW_UNOWNED_DOMAINS;
                                default none: single-tenant hosts and demos only, see docs/security.md)
  --memory-reserve SIZE         free space kept in --memory-dir beyond a guest's RAM (default 1Gi)
  --max-snapshots-per-namespace N  snapshots of one namespace in flight at once here (default 0: no cap)`;

type Values = { readonly [K in keyof typeof TENANCY_FLAGS]?: string | undefined };

/** Throws an Error naming the flag; config.ts turns it into its ConfigError. */
export function parseTenancyOptions(values: Values, env: NodeJS.ProcessEnv): TenancyOptions {
  return {
    unownedDomains: flag("--allow-unowned-domains", () =>
      parseUnownedDomainPolicy(
        values["allow-unowned-domains"] ?? env.VMSNAP_ALLOW_UNOWNED_DOMAINS ?? "",
      ),
    ),
    memoryReserveBytes: flag("--memory-reserve", () =>
      parseByteSize(values["memory-reserve"] ?? env.VMSNAP_MEMORY_RESERVE ?? "1Gi"),
    ),
    maxSnapshotsPerNamespace: flag("--max-snapshots-per-namespace", () => {
      const text = values["max-snapshots-per-namespace"] ?? "0";
      const n = Number(text);
      if (!/^\d+$/.test(text.trim()) || !Number.isSafeInteger(n))
        throw new Error(`must be a whole number (0 for no cap), not ${JSON.stringify(text)}`);
      return n;
    }),
  };
}

function flag<T>(name: string, parse: () => T): T {
  try {
    return parse();
  } catch (err) {
    throw new Error(`${name}: ${(err as Error).message}`, { cause: err });
  }
}
