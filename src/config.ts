// The agent's configuration from flags and environment (flags win), validated up front so a
// bad value stops the process at start with a message naming the flag, not mid-snapshot.
import { isAbsolute } from "node:path";
import { parseArgs } from "node:util";
import { isLogLevel, type LogLevel } from "./log.ts";
import {
  parseTenancyOptions,
  TENANCY_FLAGS,
  TENANCY_USAGE,
  type TenancyOptions,
} from "./tenancy/agent-options.ts";

export interface AgentConfig {
  /** Path of a kubeconfig; undefined means in-cluster (service account). */
  readonly kubeconfig: string | undefined;
  readonly nodeName: string;
  /** Watch one namespace only; undefined watches all. */
  readonly namespace: string | undefined;
  readonly libvirtUri: string;
  readonly cephConf: string;
  readonly cephId: string;
  readonly cephKeyring: string;
  readonly cephOpTimeoutSeconds: number;
  readonly memoryDir: string;
  readonly workers: number;
  readonly maxFrozenGuests: number;
  readonly metricsHost: string;
  readonly metricsPort: number;
  readonly logLevel: LogLevel;
  readonly callTimeoutMs: number;
  /** The sidecar thaw guard's socket; undefined spawns a guard of our own (development). */
  readonly guardSocket: string | undefined;
  /** Who may snapshot unowned domains, the memory reserve, the per-namespace cap. */
  readonly tenancy: TenancyOptions;
}

export class ConfigError extends Error {
  override readonly name = "ConfigError";
}

const OPTIONS = {
  kubeconfig: { type: "string" },
  "node-name": { type: "string" },
  namespace: { type: "string" },
  "libvirt-uri": { type: "string" },
  "ceph-conf": { type: "string" },
  "ceph-id": { type: "string" },
  "ceph-keyring": { type: "string" },
  "ceph-op-timeout": { type: "string" },
  "memory-dir": { type: "string" },
  workers: { type: "string" },
  "max-frozen-guests": { type: "string" },
  "metrics-bind-address": { type: "string" },
  "log-level": { type: "string" },
  "call-timeout": { type: "string" },
  "guard-socket": { type: "string" },
  ...TENANCY_FLAGS,
  help: { type: "boolean" },
} as const;

export const USAGE = `vmsnap-controller: takes consistent snapshots of this host's libvirt domains for VMSnapshot resources

  --kubeconfig PATH             kubeconfig ($KUBECONFIG; default: in-cluster service account)
  --node-name NAME              this host's Kubernetes node name ($NODE_NAME, required)
  --namespace NS                watch only this namespace (default: all)
  --libvirt-uri URI             ($LIBVIRT_DEFAULT_URI, default qemu:///system)
  --ceph-conf PATH              ($CEPH_CONF, default /etc/ceph/ceph.conf)
  --ceph-id ID                  Ceph client id ($VMSNAP_CEPH_ID, default vmsnap)
  --ceph-keyring PATH           ($VMSNAP_CEPH_KEYRING, default /etc/ceph/keyring)
  --ceph-op-timeout SECONDS     Ceph client-side operation timeout (default 10)
  --memory-dir DIR              where memory images go ($VMSNAP_MEMORY_DIR, default /var/lib/vmsnap/memory)
  --workers N                   concurrent reconciles (default 4)
  --max-frozen-guests N         guests frozen at once on this host (default 4)
  --metrics-bind-address H:P    /metrics, /healthz, /readyz (default 0.0.0.0:8080; port 0 picks one)
  --log-level LEVEL             debug|info|warn|error (default info)
  --call-timeout SECONDS        deadline of one libvirt call outside a freeze (default 30)
  --guard-socket PATH           connect to the thaw guard sidecar listening here ($VMSNAP_GUARD_SOCKET;
                                default: spawn a guard, which dies with us if we are a container's PID 1)
${TENANCY_USAGE}`;

/** Parses argv and env into a validated configuration; throws ConfigError naming the flag. */
export function parseConfig(argv: readonly string[], env: NodeJS.ProcessEnv): AgentConfig | "help" {
  let values;
  try {
    ({ values } = parseArgs({
      args: [...argv],
      options: OPTIONS,
      strict: true,
      allowPositionals: false,
    }));
  } catch (err) {
    throw new ConfigError(`${(err as Error).message}\n\n${USAGE}`);
  }
  if (values.help) return "help";
  const nodeName = values["node-name"] ?? env.NODE_NAME;
  if (!nodeName)
    throw new ConfigError(
      "--node-name (or $NODE_NAME) is required: the agent snapshots only its own node's domains",
    );
  const [metricsHost, metricsPort] = hostPort(values["metrics-bind-address"] ?? "0.0.0.0:8080");
  const guardSocket = values["guard-socket"] ?? env.VMSNAP_GUARD_SOCKET;
  if (guardSocket !== undefined && !isAbsolute(guardSocket))
    throw new ConfigError(
      `--guard-socket must be an absolute path, not ${JSON.stringify(guardSocket)}`,
    );
  const logLevel = values["log-level"] ?? "info";
  if (!isLogLevel(logLevel))
    throw new ConfigError(
      `--log-level must be debug, info, warn or error, not ${JSON.stringify(logLevel)}`,
    );
  let tenancy: TenancyOptions;
  try {
    tenancy = parseTenancyOptions(values, env);
  } catch (err) {
    throw new ConfigError((err as Error).message);
  }
  return {
    kubeconfig: values.kubeconfig ?? env.KUBECONFIG,
    nodeName,
    namespace: values.namespace,
    libvirtUri: values["libvirt-uri"] ?? env.LIBVIRT_DEFAULT_URI ?? "qemu:///system",
    cephConf: values["ceph-conf"] ?? env.CEPH_CONF ?? "/etc/ceph/ceph.conf",
    cephId: values["ceph-id"] ?? env.VMSNAP_CEPH_ID ?? "vmsnap",
    cephKeyring: values["ceph-keyring"] ?? env.VMSNAP_CEPH_KEYRING ?? "/etc/ceph/keyring",
    cephOpTimeoutSeconds: positive("--ceph-op-timeout", values["ceph-op-timeout"] ?? "10"),
    memoryDir: values["memory-dir"] ?? env.VMSNAP_MEMORY_DIR ?? "/var/lib/vmsnap/memory",
    workers: positive("--workers", values.workers ?? "4", true),
    maxFrozenGuests: positive("--max-frozen-guests", values["max-frozen-guests"] ?? "4", true),
    metricsHost,
    metricsPort,
    logLevel,
    callTimeoutMs: positive("--call-timeout", values["call-timeout"] ?? "30") * 1000,
    guardSocket,
    tenancy,
  };
}

function positive(flag: string, text: string, integer = false): number {
  const n = Number(text);
  if (!Number.isFinite(n) || n <= 0 || (integer && !Number.isInteger(n))) {
    throw new ConfigError(
      `${flag} must be a positive ${integer ? "whole " : ""}number, not ${JSON.stringify(text)}`,
    );
  }
  return n;
}

function hostPort(text: string): [string, number] {
  const match = /^(.*):(\d+)$/.exec(text);
  const port = Number(match?.[2]);
  if (!match || port > 65535)
    throw new ConfigError(`--metrics-bind-address must be HOST:PORT, not ${JSON.stringify(text)}`);
  return [match[1] === "" ? "0.0.0.0" : match[1]!, port];
}
