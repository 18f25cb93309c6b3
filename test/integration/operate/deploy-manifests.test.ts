// The deploy/ tree, checked without a cluster: it renders, it holds the security properties the
// agent was designed with, its CRD is crds/'s, and its copy (PrometheusRule) and PromQL
// (dashboard, alerts) agree with their sources — the metrics module and crds/.
import { expect } from "chai";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parse, parseAllDocuments, stringify } from "yaml";
import { controlPlaneBinDir } from "../../support/kube/control-plane.ts";
import { exportedFamilies, labelsIn, metricsIn, TARGET_LABELS } from "./metric-catalogue.ts";
import { REPO_ROOT, run } from "./run.ts";

/** A rendered object; the tests walk specs by hand, so their shape stays loose. */
type Manifest = {
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string> };
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  [k: string]: any;
};

const read = (path: string) => readFileSync(join(REPO_ROOT, path), "utf8");

/** `kubectl kustomize`, with the kubectl the integration tests already build. */
async function render(dir: string): Promise<Manifest[]> {
  const result = await run(join(controlPlaneBinDir(), "kubectl"), ["kustomize", dir]);
  expect(result.code, result.stderr).to.equal(0);
  return parseAllDocuments(result.stdout).map((d) => d.toJS() as Manifest);
}

function one(manifests: Manifest[], kind: string, name: string): Manifest {
  const found = manifests.filter((m) => m.kind === kind && m.metadata.name === name);
  expect(found, `${kind}/${name}`).to.have.length(1);
  return found[0]!;
}

interface Panel {
  title: string;
  type: string;
  targets?: { expr: string }[];
  panels?: Panel[];
}

function dashboardExprs(): { title: string; expr: string }[] {
  const dashboard = JSON.parse(read("deploy/grafana/vmsnap-dashboard.json")) as { panels: Panel[] };
  const all = dashboard.panels.flatMap((p) => [p, ...(p.panels ?? [])]);
  return all.flatMap((p) => (p.targets ?? []).map((t) => ({ title: p.title, expr: t.expr })));
}

function alertExprs(): { title: string; expr: string }[] {
  const rules = parse(read("deploy/prometheus/vmsnap-rules.yaml")) as {
    groups: { rules: { alert: string; expr: string }[] }[];
  };
  return rules.groups.flatMap((g) => g.rules.map((r) => ({ title: r.alert, expr: r.expr })));
}

describe("deploy/ manifests", () => {
  let base: Manifest[];
  before(async () => {
    base = await render("deploy");
  });

  it("render the CRDs, namespace, RBAC, agent DaemonSet and metrics Service", () => {
    const kinds = base.map((m) => `${m.kind}/${m.metadata.name}`).sort();
    expect(kinds).to.deep.equal([
      "ClusterRole/vmsnap-controller",
      "ClusterRole/vmsnap-edit",
      "ClusterRole/vmsnap-view",
      "ClusterRoleBinding/vmsnap-controller",
      "CustomResourceDefinition/vmrestores.vmsnap.io",
      "CustomResourceDefinition/vmsnapshots.vmsnap.io",
      "CustomResourceDefinition/vmsnapshotschedules.vmsnap.io",
      "DaemonSet/vmsnap-controller",
      "Namespace/vmsnap-system",
      "Service/vmsnap-controller",
      "ServiceAccount/vmsnap-controller",
      "ValidatingAdmissionPolicy/vmsnap-agent-own-node",
      "ValidatingAdmissionPolicy/vmsnap-allowed-domains",
      "ValidatingAdmissionPolicyBinding/vmsnap-agent-own-node",
      "ValidatingAdmissionPolicyBinding/vmsnap-allowed-domains",
    ]);
    for (const m of base.filter(
      (m) => !["Namespace", "CustomResourceDefinition"].includes(m.kind),
    )) {
      if (m.kind.startsWith("Cluster") || m.kind.startsWith("ValidatingAdmissionPolicy")) continue;
      expect(m.metadata.namespace, `${m.kind}/${m.metadata.name}`).to.equal("vmsnap-system");
    }
  });

  it("carry the CRD exactly as crds/ defines it, from crds/ itself", () => {
    const source = parse(read("crds/vmsnap.io_vmsnapshots.yaml")) as Manifest;
    expect(one(base, "CustomResourceDefinition", "vmsnapshots.vmsnap.io")).to.deep.equal(source);
    expect(parse(read("deploy/kustomization.yaml")).resources).to.include("../crds");
  });

  it("grant no wildcard and nothing outside the vmsnap.io and events.k8s.io groups", () => {
    const role = one(base, "ClusterRole", "vmsnap-controller");
    for (const rule of role.rules as {
      apiGroups: string[];
      resources: string[];
      verbs: string[];
    }[]) {
      expect(rule.apiGroups.every((g) => ["vmsnap.io", "events.k8s.io"].includes(g))).to.equal(
        true,
      );
      expect([...rule.resources, ...rule.verbs, ...rule.apiGroups]).not.to.include("*");
    }
  });

  describe("the agent DaemonSet", () => {
    const spec = () => one(base, "DaemonSet", "vmsnap-controller").spec.template.spec;
    const container = () => spec().containers[0];

    it("learns its host from the downward API", () => {
      const env = container().env as {
        name: string;
        valueFrom?: { fieldRef?: { fieldPath: string } };
      }[];
      expect(env.find((e) => e.name === "NODE_NAME")?.valueFrom?.fieldRef?.fieldPath).to.equal(
        "spec.nodeName",
      );
    });

    it("mounts only the libvirt socket folder and the memory-image folder from the host", () => {
      const hostPaths = (spec().volumes as { hostPath?: { path: string } }[])
        .flatMap((v) => (v.hostPath ? [v.hostPath.path] : []))
        .sort();
      expect(hostPaths).to.deep.equal(["/var/lib/vmsnap/memory", "/var/run/libvirt"]);
      expect(spec().hostNetwork ?? false).to.equal(false);
      expect(spec().hostPID ?? false).to.equal(false);
    });

    it("mounts the Ceph config and keyring read-only from a Secret", () => {
      const volume = (spec().volumes as { name: string; secret?: { secretName: string } }[]).find(
        (v) => v.secret,
      );
      expect(volume?.secret?.secretName).to.equal("vmsnap-ceph");
      const mount = (
        container().volumeMounts as { name: string; readOnly?: boolean; mountPath: string }[]
      ).find((m) => m.name === volume!.name);
      expect(mount).to.include({ mountPath: "/etc/ceph", readOnly: true });
    });

    it("runs as root for the socket, but unprivileged: no capabilities, read-only root filesystem", () => {
      const sc = container().securityContext;
      expect(sc.privileged).to.equal(false);
      expect(sc.allowPrivilegeEscalation).to.equal(false);
      expect(sc.readOnlyRootFilesystem).to.equal(true);
      expect(sc.capabilities).to.deep.equal({ drop: ["ALL"] });
    });

    it("probes liveness and readiness on the port the metrics Service scrapes", () => {
      const c = container();
      const port = (c.ports as { name: string; containerPort: number }[]).find(
        (p) => p.name === "metrics",
      );
      expect(port, "a container port named metrics").to.not.equal(undefined);
      expect(c.livenessProbe.httpGet).to.deep.equal({ path: "/healthz", port: "metrics" });
      expect(c.readinessProbe.httpGet).to.deep.equal({ path: "/readyz", port: "metrics" });
      expect(c.args).to.include(`--metrics-bind-address=0.0.0.0:${port!.containerPort}`);
      const service = one(base, "Service", "vmsnap-controller");
      expect(service.spec.ports[0].targetPort).to.equal("metrics");
      const podLabels = one(base, "DaemonSet", "vmsnap-controller").spec.template.metadata.labels;
      expect(podLabels).to.include(service.spec.selector);
    });

    it("sets requests and a memory limit", () => {
      const resources = container().resources;
      expect(resources.requests).to.have.keys("cpu", "memory");
      expect(resources.limits).to.have.property("memory");
    });
  });

  describe("monitoring", () => {
    it("renders a ServiceMonitor, PrometheusRule and dashboard ConfigMap apart from the base", async () => {
      const monitoring = await render("deploy/monitoring");
      expect(monitoring.map((m) => m.kind).sort()).to.deep.equal([
        "ConfigMap",
        "PrometheusRule",
        "ServiceMonitor",
      ]);
      const monitor = one(monitoring, "ServiceMonitor", "vmsnap-controller");
      const service = one(base, "Service", "vmsnap-controller");
      expect(service.metadata).to.have.nested.property("labels");
      for (const [k, v] of Object.entries(
        monitor.spec.selector.matchLabels as Record<string, string>,
      )) {
        expect((service.metadata as { labels: Record<string, string> }).labels[k]).to.equal(v);
      }
      expect(monitor.spec.endpoints[0].port).to.equal(service.spec.ports[0].name);
    });

    it("ships the PrometheusRule with exactly the groups of deploy/prometheus/vmsnap-rules.yaml", async () => {
      const monitoring = await render("deploy/monitoring");
      const rule = one(monitoring, "PrometheusRule", "vmsnap");
      const source = parse(read("deploy/prometheus/vmsnap-rules.yaml")) as { groups: unknown };
      expect(rule.spec.groups).to.deep.equal(source.groups);
    });
  });

  describe("dashboard and alert PromQL", () => {
    const families = exportedFamilies();
    const exprs = () => [...dashboardExprs(), ...alertExprs()];

    it("reads only metrics the agent exports", () => {
      for (const { title, expr } of exprs()) {
        for (const name of metricsIn(expr, families)) {
          expect(families.has(name), `${title}: ${name} in ${expr}`).to.equal(true);
        }
      }
    });

    it("groups and filters only by labels those metrics carry", () => {
      for (const { title, expr } of exprs()) {
        const known = new Set([
          ...TARGET_LABELS,
          "le",
          ...metricsIn(expr, families).flatMap((n) => families.get(n)?.labels ?? []),
        ]);
        for (const label of labelsIn(expr)) {
          expect(known.has(label), `${title}: label ${label} in ${expr}`).to.equal(true);
        }
      }
    });

    it("is valid PromQL for Prometheus, Grafana's variables substituted", async () => {
      const dir = mkdtempSync(join(tmpdir(), "vmsnap-dashboard-"));
      try {
        const rules = dashboardExprs().map(({ expr }, i) => ({
          record: `dashboard:expr_${i}`,
          expr: expr.replaceAll("$__rate_interval", "5m").replaceAll("$instance", ".*"),
        }));
        writeFileSync(
          join(dir, "dashboard.rules.yaml"),
          stringify({ groups: [{ name: "dashboard", rules }] }),
        );
        const result = await run("promtool", ["check", "rules", join(dir, "dashboard.rules.yaml")]);
        expect(result.code, result.stdout + result.stderr).to.equal(0);
        expect(result.stdout).to.contain(`SUCCESS: ${rules.length} rules found`);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });

    it("shows what an operator needs: frozen window p50/p99, downtime, results by reason, guests frozen, reconciles, errors, queue depth, time since each schedule's last success", () => {
      const all = dashboardExprs().map((e) => e.expr);
      const has = (pattern: RegExp) => all.some((e) => pattern.test(e));
      expect(has(/histogram_quantile\(0\.5, .*vmsnap_guest_frozen_seconds_bucket/)).to.equal(true);
      expect(has(/histogram_quantile\(0\.99, .*vmsnap_guest_frozen_seconds_bucket/)).to.equal(true);
      expect(has(/vmsnap_vm_downtime_seconds_bucket/)).to.equal(true);
      expect(has(/by \([^)]*reason[^)]*\) \(increase\(vmsnap_snapshots_total/)).to.equal(true);
      expect(has(/vmsnap_guests_frozen\{/)).to.equal(true);
      expect(has(/rate\(controller_runtime_reconcile_total/)).to.equal(true);
      expect(has(/rate\(controller_runtime_reconcile_errors_total/)).to.equal(true);
      expect(has(/workqueue_depth\{/)).to.equal(true);
      expect(
        has(
          /^time\(\) - max by \(namespace, schedule\) \(vmsnap_schedule_last_success_timestamp_seconds\{/,
        ),
      ).to.equal(true);
    });
  });
});
