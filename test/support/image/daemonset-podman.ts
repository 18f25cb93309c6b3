// Translates a DaemonSet's pod template into `podman run` arguments, the way a kubelet would run
// it on one node, so a test can run the deployed pod (deploy/controller/daemonset.yaml) without a
// kubelet. Pure: it returns what to write and what to run; daemonset-pod.ts does it.
//
// Every field the pod uses is translated; a field this code does not know how to honour makes it
// throw rather than be silently dropped, so a DaemonSet change cannot slip past the test. Two
// things differ from a cluster on purpose, both stated by the caller: the pod shares the host's
// network (the test services listen on loopback), and nothing restarts a container that exits
// (the test plays the kubelet's restart when it wants one).
//
// Why not `podman kube play`: Debian 12's podman (4.3) plays Pods and Deployments, not DaemonSets;
// it runs init containers to completion first, so a native sidecar (an init container with
// restartPolicy Always) would block the pod forever; it has no downward-API spec.nodeName, and it
// stops every container at once rather than the controller before its sidecar
// (docs/image-facts.md).

export interface PodTemplate {
  metadata?: { labels?: Record<string, string> };
  spec: PodSpec;
}

interface PodSpec {
  serviceAccountName?: string;
  automountServiceAccountToken?: boolean;
  nodeSelector?: Record<string, string>;
  terminationGracePeriodSeconds?: number;
  hostNetwork?: boolean;
  securityContext?: PodSecurityContext;
  initContainers?: ContainerSpec[];
  containers: ContainerSpec[];
  volumes?: VolumeSpec[];
}

type PodSecurityContext = Pick<
  SecurityContext,
  "runAsUser" | "runAsGroup" | "runAsNonRoot" | "seccompProfile"
>;

interface SecurityContext {
  runAsUser?: number;
  runAsGroup?: number;
  runAsNonRoot?: boolean;
  privileged?: boolean;
  allowPrivilegeEscalation?: boolean;
  readOnlyRootFilesystem?: boolean;
  capabilities?: { drop?: string[]; add?: string[] };
  seccompProfile?: { type: string };
}

interface ContainerSpec {
  name: string;
  image: string;
  imagePullPolicy?: string;
  restartPolicy?: string;
  command?: string[];
  args?: string[];
  workingDir?: string;
  env?: Array<{ name: string; value?: string; valueFrom?: { fieldRef?: { fieldPath: string } } }>;
  ports?: Array<{ name?: string; containerPort: number; protocol?: string }>;
  livenessProbe?: ProbeSpec;
  readinessProbe?: ProbeSpec;
  resources?: { requests?: Record<string, string>; limits?: Record<string, string> };
  securityContext?: SecurityContext;
  volumeMounts?: Array<{ name: string; mountPath: string; readOnly?: boolean }>;
}

interface ProbeSpec {
  httpGet?: { path: string; port: number | string };
}

interface VolumeSpec {
  name: string;
  hostPath?: { path: string; type?: string };
  emptyDir?: { medium?: string; sizeLimit?: string };
  secret?: {
    secretName: string;
    defaultMode?: number;
    items?: Array<{ key: string; path: string; mode?: number }>;
  };
  projected?: { defaultMode?: number; sources: ProjectionSpec[] };
}

/** The sources a service-account token volume is made of (what automounting projects). */
interface ProjectionSpec {
  serviceAccountToken?: { path: string; audience?: string; expirationSeconds?: number };
  configMap?: { name: string; items?: Array<{ key: string; path: string }> };
  downwardAPI?: { items: Array<{ path: string; fieldRef?: { fieldPath: string } }> };
}

/** Pod fields that only decide where the pod is scheduled, not how a kubelet runs it. */
const SCHEDULING_ONLY = new Set(["nodeSelector", "tolerations", "affinity", "priorityClassName"]);
const POD_FIELDS = new Set([
  ...SCHEDULING_ONLY,
  "serviceAccountName",
  "automountServiceAccountToken",
  "terminationGracePeriodSeconds",
  "hostNetwork",
  "securityContext",
  "initContainers",
  "containers",
  "volumes",
]);
const CONTAINER_FIELDS = new Set([
  "name",
  "image",
  "imagePullPolicy",
  "restartPolicy",
  "command",
  "args",
  "workingDir",
  "env",
  "ports",
  "livenessProbe",
  "readinessProbe",
  "resources",
  "securityContext",
  "volumeMounts",
]);

function refuseUnknown(what: string, object: object, known: ReadonlySet<string>): void {
  const unknown = Object.keys(object).filter((k) => !known.has(k));
  if (unknown.length > 0) throw new Error(`${what}: ${unknown.join(", ")} not translated`);
}

/** What a kubelet would know about the node and the cluster when it starts this pod. */
export interface NodeContext {
  /** The pod's name (containers are named `<podName>-<container>`). */
  readonly podName: string;
  readonly namespace: string;
  /** spec.nodeName, for the downward API. */
  readonly nodeName: string;
  /** Where the pod's secret files and disk-backed emptyDirs go on the host. */
  readonly podDir: string;
  /** Where memory-backed emptyDirs go (a tmpfs, e.g. under /dev/shm). */
  readonly podMemoryDir: string;
  /** Secrets by name, key -> content: what the kubelet would fetch from the API server. */
  readonly secrets: Readonly<Record<string, Readonly<Record<string, string>>>>;
  /** The service account token the kubelet would mount, and the API server it points at. */
  readonly serviceAccount: {
    readonly token: string;
    readonly caCrt: string;
    readonly apiHost: string;
    readonly apiPort: number;
  };
}

export interface FileToWrite {
  readonly path: string;
  readonly content: string;
  readonly mode: number;
}

export interface HostDirectory {
  readonly path: string;
  /** True when the kubelet would refuse to start the pod if it is missing (hostPath Directory). */
  readonly mustExist: boolean;
}

export interface ContainerRun {
  readonly name: string;
  /** The container's name in the pod spec. */
  readonly specName: string;
  /** A native sidecar: an init container with restartPolicy Always. */
  readonly sidecar: boolean;
  /** Arguments after `podman` (`run --detach ...`). */
  readonly argv: string[];
  /** The container's ports by name (for probes and /metrics). */
  readonly ports: Readonly<Record<string, number>>;
  /** The HTTP probes a kubelet would run (podman runs none): path and port number. */
  readonly probes: { readonly liveness?: HttpProbe; readonly readiness?: HttpProbe };
}

export interface HttpProbe {
  readonly path: string;
  readonly port: number;
}

export interface PodPlan {
  readonly directories: HostDirectory[];
  readonly files: FileToWrite[];
  /** In start order: native sidecars first, then the containers. Stop in reverse. */
  readonly containers: ContainerRun[];
  readonly terminationGracePeriodSeconds: number;
}

const SERVICE_ACCOUNT_DIR = "/var/run/secrets/kubernetes.io/serviceaccount";
const KNOWN_HOSTPATH_TYPES = new Set(["", "Directory", "DirectoryOrCreate"]);

/** The pod template of the first DaemonSet in `documents`. */
export function podTemplateOf(documents: readonly unknown[]): PodTemplate {
  const ds = documents.find(
    (d): d is { kind: string; spec: { template: PodTemplate } } =>
      (d as { kind?: string } | null)?.kind === "DaemonSet",
  );
  if (!ds) throw new Error("no DaemonSet in the manifest");
  return ds.spec.template;
}

/** Plans the pod: the host folders and files it needs, and one `podman run` per container. */
export function planPod(template: PodTemplate, node: NodeContext): PodPlan {
  const spec = template.spec;
  refuseUnknown("pod spec", spec, POD_FIELDS);
  for (const c of [...(spec.initContainers ?? []), ...spec.containers])
    refuseUnknown(`container ${c.name}`, c, CONTAINER_FIELDS);
  const directories: HostDirectory[] = [];
  const files: FileToWrite[] = [];
  const volumeSources = new Map<string, string>();

  for (const v of spec.volumes ?? []) {
    volumeSources.set(v.name, volumeSource(v, node, directories, files));
  }
  if (spec.automountServiceAccountToken !== false) {
    const dir = `${node.podDir}/serviceaccount`;
    files.push(
      { path: `${dir}/token`, content: node.serviceAccount.token, mode: 0o644 },
      { path: `${dir}/ca.crt`, content: node.serviceAccount.caCrt, mode: 0o644 },
      { path: `${dir}/namespace`, content: node.namespace, mode: 0o644 },
    );
  }

  const sidecars = (spec.initContainers ?? []).map((c) => {
    if (c.restartPolicy !== "Always")
      throw new Error(`init container ${c.name}: only native sidecars (restartPolicy Always)`);
    return c;
  });
  const containers = [
    ...sidecars.map((c) => runOf(c, true, spec, node, volumeSources)),
    ...spec.containers.map((c) => runOf(c, false, spec, node, volumeSources)),
  ];
  return {
    directories,
    files,
    containers,
    terminationGracePeriodSeconds: spec.terminationGracePeriodSeconds ?? 30,
  };
}

function volumeSource(
  v: VolumeSpec,
  node: NodeContext,
  directories: HostDirectory[],
  files: FileToWrite[],
): string {
  if (v.hostPath) {
    const type = v.hostPath.type ?? "";
    if (!KNOWN_HOSTPATH_TYPES.has(type))
      throw new Error(`volume ${v.name}: hostPath type ${type} is not translated`);
    directories.push({ path: v.hostPath.path, mustExist: type === "Directory" });
    return v.hostPath.path;
  }
  if (v.emptyDir) {
    const medium = v.emptyDir.medium ?? "";
    if (medium !== "" && medium !== "Memory")
      throw new Error(`volume ${v.name}: emptyDir medium ${medium} is not translated`);
    const path = `${medium === "Memory" ? node.podMemoryDir : node.podDir}/empty-dir/${v.name}`;
    directories.push({ path, mustExist: false });
    return path;
  }
  if (v.secret) {
    const data = node.secrets[v.secret.secretName];
    if (!data) throw new Error(`volume ${v.name}: no Secret ${v.secret.secretName}`);
    const dir = `${node.podDir}/secret/${v.name}`;
    directories.push({ path: dir, mustExist: false });
    const items: Array<{ key: string; path: string; mode?: number }> =
      v.secret.items ?? Object.keys(data).map((key) => ({ key, path: key }));
    for (const item of items) {
      const content = data[item.key];
      if (content === undefined)
        throw new Error(`volume ${v.name}: Secret ${v.secret.secretName} has no key ${item.key}`);
      // Kubernetes' default mode for secret files is 0644.
      const mode = item.mode ?? v.secret.defaultMode ?? 0o644;
      files.push({ path: `${dir}/${item.path}`, content, mode });
    }
    return dir;
  }
  if (v.projected) {
    const dir = `${node.podDir}/projected/${v.name}`;
    directories.push({ path: dir, mustExist: false });
    const mode = v.projected.defaultMode ?? 0o644;
    for (const source of v.projected.sources)
      files.push(...projection(v.name, source, node, dir, mode));
    return dir;
  }
  throw new Error(`volume ${v.name}: only hostPath, emptyDir, secret and projected are translated`);
}

/** The files of one projected source: a service-account token, the cluster CA, the namespace. */
function projection(
  volume: string,
  source: ProjectionSpec,
  node: NodeContext,
  dir: string,
  mode: number,
): FileToWrite[] {
  if (source.serviceAccountToken)
    return [
      {
        path: `${dir}/${source.serviceAccountToken.path}`,
        content: node.serviceAccount.token,
        mode,
      },
    ];
  if (source.configMap?.name === "kube-root-ca.crt")
    return (source.configMap.items ?? [{ key: "ca.crt", path: "ca.crt" }]).map((item) => {
      if (item.key !== "ca.crt")
        throw new Error(`volume ${volume}: kube-root-ca.crt has no ${item.key}`);
      return { path: `${dir}/${item.path}`, content: node.serviceAccount.caCrt, mode };
    });
  if (source.downwardAPI)
    return source.downwardAPI.items.map((item) => {
      if (item.fieldRef?.fieldPath !== "metadata.namespace")
        throw new Error(`volume ${volume}: downwardAPI ${JSON.stringify(item)} not translated`);
      return { path: `${dir}/${item.path}`, content: node.namespace, mode };
    });
  throw new Error(`volume ${volume}: projection ${JSON.stringify(source)} not translated`);
}

function runOf(
  c: ContainerSpec,
  sidecar: boolean,
  pod: PodSpec,
  node: NodeContext,
  volumes: ReadonlyMap<string, string>,
): ContainerRun {
  const name = `${node.podName}-${c.name}`;
  const argv = ["run", "--detach", "--name", name, "--restart=no"];
  // The test's one deliberate difference: the services it runs against listen on loopback.
  argv.push("--network=host");
  argv.push(`--pull=${pullPolicy(c.imagePullPolicy)}`);
  argv.push(...securityArgs(c, pod));
  for (const e of c.env ?? []) argv.push("--env", `${e.name}=${envValue(c.name, e, node)}`);
  // What the kubelet adds to every container: where the API server is.
  argv.push(`--env=KUBERNETES_SERVICE_HOST=${node.serviceAccount.apiHost}`);
  argv.push(`--env=KUBERNETES_SERVICE_PORT=${node.serviceAccount.apiPort}`);
  for (const m of c.volumeMounts ?? []) {
    const source = volumes.get(m.name);
    if (!source) throw new Error(`container ${c.name}: mount of unknown volume ${m.name}`);
    argv.push(`--mount=type=bind,src=${source},dst=${m.mountPath}${m.readOnly ? ",ro=true" : ""}`);
  }
  if (pod.automountServiceAccountToken !== false)
    argv.push(
      `--mount=type=bind,src=${node.podDir}/serviceaccount,dst=${SERVICE_ACCOUNT_DIR},ro=true`,
    );
  const memory = c.resources?.limits?.memory;
  if (memory) argv.push(`--memory=${bytes(memory)}b`);
  if (c.workingDir) argv.push(`--workdir=${c.workingDir}`);
  if (c.command) argv.push(`--entrypoint=${JSON.stringify(c.command)}`);
  argv.push(c.image, ...(c.args ?? []));
  const ports = Object.fromEntries(
    (c.ports ?? []).filter((p) => p.name).map((p) => [p.name!, p.containerPort]),
  );
  const probe = (p: ProbeSpec | undefined): HttpProbe | undefined => {
    if (!p) return undefined;
    if (!p.httpGet) throw new Error(`container ${c.name}: only httpGet probes are translated`);
    const port = typeof p.httpGet.port === "number" ? p.httpGet.port : ports[p.httpGet.port];
    if (port === undefined) throw new Error(`container ${c.name}: no port ${p.httpGet.port}`);
    return { path: p.httpGet.path, port };
  };
  const probes = { liveness: probe(c.livenessProbe), readiness: probe(c.readinessProbe) };
  return { name, specName: c.name, sidecar, argv, ports, probes };
}

function securityArgs(c: ContainerSpec, pod: PodSpec): string[] {
  const sc = { ...pod.securityContext, ...c.securityContext };
  const args: string[] = [];
  if (sc.runAsUser !== undefined) {
    args.push(`--user=${sc.runAsUser}${sc.runAsGroup !== undefined ? `:${sc.runAsGroup}` : ""}`);
  }
  if (sc.runAsNonRoot === true && sc.runAsUser === 0)
    throw new Error(`container ${c.name}: runAsNonRoot with runAsUser 0 would not start`);
  if (sc.privileged) args.push("--privileged");
  if (sc.allowPrivilegeEscalation === false) args.push("--security-opt=no-new-privileges");
  // podman's --read-only alone would add writable tmpfs on /tmp, /run and /var/tmp; a kubelet
  // adds none, so the pod's own emptyDirs are all there is.
  if (sc.readOnlyRootFilesystem) args.push("--read-only", "--read-only-tmpfs=false");
  for (const cap of sc.capabilities?.drop ?? []) args.push(`--cap-drop=${cap}`);
  for (const cap of sc.capabilities?.add ?? []) args.push(`--cap-add=${cap}`);
  const seccomp = sc.seccompProfile?.type ?? "RuntimeDefault";
  if (seccomp === "Unconfined") args.push("--security-opt=seccomp=unconfined");
  // RuntimeDefault is podman's default profile; a Localhost profile would need its file.
  else if (seccomp !== "RuntimeDefault")
    throw new Error(`container ${c.name}: seccomp ${seccomp} is not translated`);
  return args;
}

function envValue(
  container: string,
  e: NonNullable<ContainerSpec["env"]>[number],
  node: NodeContext,
): string {
  if (e.value !== undefined) return e.value;
  const field = e.valueFrom?.fieldRef?.fieldPath;
  if (field === "spec.nodeName") return node.nodeName;
  if (field === "metadata.name") return node.podName;
  if (field === "metadata.namespace") return node.namespace;
  throw new Error(`container ${container}: env ${e.name} from ${JSON.stringify(e.valueFrom)}`);
}

function pullPolicy(policy: string | undefined): string {
  if (policy === "Always") return "always";
  if (policy === "Never") return "never";
  return "missing";
}

const UNITS: Record<string, number> = {
  Ki: 2 ** 10,
  Mi: 2 ** 20,
  Gi: 2 ** 30,
  k: 1e3,
  M: 1e6,
  G: 1e9,
};

/** A Kubernetes memory quantity (256Mi, 1G, 1000) in bytes. */
export function bytes(quantity: string): number {
  const m = /^(\d+)([KMG]i|[kMG])?$/.exec(quantity);
  if (!m) throw new Error(`memory quantity ${quantity} is not translated`);
  return Number(m[1]) * (m[2] ? UNITS[m[2]]! : 1);
}
