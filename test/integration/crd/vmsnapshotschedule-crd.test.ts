// The VMSnapshotSchedule CRD as the real kube-apiserver enforces it: the sample applies with the
// documented defaults and printer columns, each host's agent can select its schedules by node, a
// template may change (unlike a VMSnapshot's spec), and invalid input — bad cron, unknown time
// zone, negative keep, a template a VMSnapshot would refuse — is refused with a message naming
// the field to fix.
import { join } from "node:path";
import { expect } from "chai";
import { CustomObjectsApi } from "@kubernetes/client-node";
import { getControlPlane, REPO_ROOT, type ControlPlane } from "../../support/kube/control-plane.ts";

const GROUP = "vmsnap.io";
const VERSION = "v1alpha1";
const PLURAL = "vmsnapshotschedules";

interface Manifest {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string };
  spec?: Record<string, unknown>;
  status?: Record<string, unknown>;
}

const validTemplate = { source: { domain: "db-01", node: "hv-02" } };
const validSpec = { schedule: "0 * * * *", template: validTemplate };

function schedule(name: string, spec: Record<string, unknown>): Manifest {
  return {
    apiVersion: `${GROUP}/${VERSION}`,
    kind: "VMSnapshotSchedule",
    metadata: { name },
    spec,
  };
}

/** Each case: a spec the API server must refuse, and the field its message must name. */
const invalidSpecs: ReadonlyArray<{ name: string; spec: Record<string, unknown>; field: string }> =
  [
    { name: "missing schedule", spec: { template: validTemplate }, field: "spec.schedule" },
    { name: "missing template", spec: { schedule: "@hourly" }, field: "spec.template" },
    {
      name: "cron with four fields",
      spec: { ...validSpec, schedule: "* * * *" },
      field: "spec.schedule",
    },
    {
      name: "cron with a seconds field",
      spec: { ...validSpec, schedule: "0 0 * * * *" },
      field: "spec.schedule",
    },
    {
      name: "cron in words",
      spec: { ...validSpec, schedule: "every hour" },
      field: "spec.schedule",
    },
    { name: "cron with ?", spec: { ...validSpec, schedule: "0 0 ? * *" }, field: "spec.schedule" },
    {
      name: "cron with a shell word",
      spec: { ...validSpec, schedule: "0 * * * *; reboot" },
      field: "spec.schedule",
    },
    {
      name: "an @-form that is not accepted",
      spec: { ...validSpec, schedule: "@reboot" },
      field: "spec.schedule",
    },
    { name: "empty cron", spec: { ...validSpec, schedule: "" }, field: "spec.schedule" },
    {
      name: "time zone with a space",
      spec: { ...validSpec, timeZone: "Europe Berlin" },
      field: "spec.timeZone",
    },
    {
      name: "time zone as an offset",
      spec: { ...validSpec, timeZone: "+02:00" },
      field: "spec.timeZone",
    },
    {
      name: "time zone as a path",
      spec: { ...validSpec, timeZone: "../../etc/passwd" },
      field: "spec.timeZone",
    },
    {
      name: "time zone in the wrong case",
      spec: { ...validSpec, timeZone: "utc" },
      field: "spec.timeZone",
    },
    {
      name: "time zone Local (the API server's own)",
      spec: { ...validSpec, timeZone: "Local" },
      field: "spec.timeZone",
    },
    {
      name: "unknown time zone",
      spec: { ...validSpec, timeZone: "Mars/Olympus_Mons" },
      field: "spec.timeZone",
    },
    {
      name: "negative keepLast",
      spec: { ...validSpec, retention: { keepLast: -1 } },
      field: "spec.retention.keepLast",
    },
    {
      name: "negative keepHourly",
      spec: { ...validSpec, retention: { keepHourly: -24 } },
      field: "spec.retention.keepHourly",
    },
    {
      name: "negative keepDaily",
      spec: { ...validSpec, retention: { keepDaily: -7 } },
      field: "spec.retention.keepDaily",
    },
    {
      name: "negative keepWeekly",
      spec: { ...validSpec, retention: { keepWeekly: -1 } },
      field: "spec.retention.keepWeekly",
    },
    {
      name: "negative keepMonthly",
      spec: { ...validSpec, retention: { keepMonthly: -1 } },
      field: "spec.retention.keepMonthly",
    },
    {
      name: "negative keepFailed",
      spec: { ...validSpec, retention: { keepFailed: -3 } },
      field: "spec.retention.keepFailed",
    },
    {
      name: "keep count not a number",
      spec: { ...validSpec, retention: { keepLast: "all" } },
      field: "spec.retention.keepLast",
    },
    {
      name: "concurrencyPolicy Replace",
      spec: { ...validSpec, concurrencyPolicy: "Replace" },
      field: "spec.concurrencyPolicy",
    },
    {
      name: "startingDeadline malformed",
      spec: { ...validSpec, startingDeadline: "soon" },
      field: "spec.startingDeadline",
    },
    {
      name: "startingDeadline below 10s",
      spec: { ...validSpec, startingDeadline: "5s" },
      field: "spec.startingDeadline",
    },
    {
      name: "suspend not a boolean",
      spec: { ...validSpec, suspend: "yes" },
      field: "spec.suspend",
    },
    {
      name: "template without source",
      spec: { ...validSpec, template: { memory: true } },
      field: "spec.template.source",
    },
    {
      name: "template domain with a semicolon",
      spec: { ...validSpec, template: { source: { domain: "vm;rm -rf /", node: "hv-02" } } },
      field: "spec.template.source.domain",
    },
    {
      name: "template node not a DNS name",
      spec: { ...validSpec, template: { source: { domain: "db-01", node: "HV_02" } } },
      field: "spec.template.source.node",
    },
    {
      name: "template freezeTimeout above 5m",
      spec: { ...validSpec, template: { ...validTemplate, freezeTimeout: "6m" } },
      field: "spec.template.freezeTimeout",
    },
    {
      name: "template failureDeadline shorter than freezeTimeout",
      spec: {
        ...validSpec,
        template: { ...validTemplate, freezeTimeout: "30s", failureDeadline: "20s" },
      },
      field: "spec.template.failureDeadline",
    },
    {
      name: "template quiesce not in the enum",
      spec: { ...validSpec, template: { ...validTemplate, quiesce: "Sometimes" } },
      field: "spec.template.quiesce",
    },
    {
      name: "template excluded disk with a path",
      spec: { ...validSpec, template: { ...validTemplate, disks: { exclude: ["/dev/vdb"] } } },
      field: "spec.template.disks.exclude[0]",
    },
    {
      name: "unknown field in template",
      spec: { ...validSpec, template: { ...validTemplate, snapshotEverything: true } },
      field: "spec.template.snapshotEverything",
    },
    { name: "unknown field", spec: { ...validSpec, keepForever: true }, field: "spec.keepForever" },
  ];

describe("VMSnapshotSchedule CRD on a real kube-apiserver", function () {
  this.timeout(120_000);
  let cp: ControlPlane;
  let namespace: string;

  before(async () => {
    cp = await getControlPlane();
    namespace = await cp.newNamespace("sched");
  });

  const apply = (manifest: Manifest, ns = namespace) =>
    // JSON, not YAML: kubectl reads YAML 1.1, where an unquoted `yes` would be a boolean.
    cp.kubectl(["apply", "-n", ns, "-f", "-"], JSON.stringify(manifest));
  const get = async (name: string, ns = namespace) =>
    JSON.parse((await cp.kubectl(["get", "vmsnapsched", name, "-n", ns, "-o", "json"])).stdout);

  describe("a valid schedule", () => {
    it("the db-01 sample applies and `kubectl get vmsnapsched` shows the printer columns", async () => {
      const sample = join(REPO_ROOT, "config/samples/db-01-hourly-schedule.yaml");
      const applied = await cp.kubectl(["apply", "-n", namespace, "-f", sample]);
      expect(applied.code, applied.stderr).to.equal(0);
      const table = await cp.kubectl(["get", "vmsnapsched", "-n", namespace]);
      expect(table.code, table.stderr).to.equal(0);
      const header = table.stdout.split("\n")[0]!.trim().split(/\s+/);
      expect(header).to.deep.equal([
        "NAME",
        "SCHEDULE",
        "TIMEZONE",
        "DOMAIN",
        "SUSPEND",
        "LASTSCHEDULE",
        "LASTSUCCESS",
        "AGE",
      ]);
      expect(table.stdout).to.match(/db-01-hourly\s+0 \* \* \* \*\s+Europe\/Berlin\s+db-01\s+/);
    });

    it("fills the documented defaults, the template's as a VMSnapshot's", async () => {
      expect((await apply(schedule("defaults", validSpec))).code).to.equal(0);
      const { spec } = await get("defaults");
      expect(spec).to.deep.include({
        timeZone: "UTC",
        concurrencyPolicy: "Forbid",
        suspend: false,
      });
      expect(spec.template).to.deep.include({
        memory: false,
        quiesce: "IfAvailable",
        freezeTimeout: "10s",
        failureDeadline: "5m",
        deletionPolicy: "Delete",
      });
      expect(
        (await apply(schedule("kept", { ...validSpec, retention: { keepLast: 2 } }))).code,
      ).to.equal(0);
      expect((await get("kept")).spec.retention).to.deep.equal({ keepLast: 2, keepFailed: 3 });
    });

    it("accepts every @-form, names of months and days, and zones of every shape", async () => {
      const cases: Array<Record<string, unknown>> = [
        { schedule: "@daily", timeZone: "America/Argentina/Buenos_Aires" },
        { schedule: "@midnight", timeZone: "Etc/GMT+5" },
        { schedule: "@weekly", timeZone: "Asia/Kolkata" },
        { schedule: "@monthly" },
        { schedule: "@yearly" },
        { schedule: "@annually" },
        { schedule: "30 2 * JAN,jul MON-FRI", timeZone: "Europe/Berlin" },
        { schedule: "5-59/15 8-18 * * 1-5", startingDeadline: "1h30m", retention: { keepLast: 0 } },
      ];
      for (const [index, extra] of cases.entries()) {
        const result = await apply(schedule(`shape-${index}`, { ...validSpec, ...extra }));
        expect(result.code, `${JSON.stringify(extra)}: ${result.stderr}`).to.equal(0);
      }
    });

    it("lets the template change (runs already created keep their own spec)", async () => {
      expect((await apply(schedule("mutable", validSpec))).code).to.equal(0);
      const changed = { ...validSpec, template: { source: { domain: "db-02", node: "hv-02" } } };
      const result = await apply(schedule("mutable", changed));
      expect(result.code, result.stderr).to.equal(0);
      expect((await get("mutable")).spec.template.source.domain).to.equal("db-02");
    });

    it("is listed under the snapshots category", async () => {
      const result = await cp.kubectl(["get", "snapshots", "-n", namespace, "-o", "name"]);
      expect(result.code, result.stderr).to.equal(0);
      expect(result.stdout).to.include("vmsnapshotschedule.vmsnap.io/db-01-hourly");
    });

    it("a field-selector list on spec.template.source.node returns exactly that node's schedules", async () => {
      const ns = await cp.newNamespace("sched-selector");
      for (const [name, node] of [
        ["a", "hv-a"],
        ["b", "hv-b"],
        ["c", "hv-a"],
      ] as const) {
        const spec = { ...validSpec, template: { source: { domain: `vm-${name}`, node } } };
        expect((await apply(schedule(name, spec), ns)).code).to.equal(0);
      }
      const api = cp.kubeConfig().makeApiClient(CustomObjectsApi);
      const list = (await api.listNamespacedCustomObject({
        group: GROUP,
        version: VERSION,
        namespace: ns,
        plural: PLURAL,
        fieldSelector: "spec.template.source.node=hv-a",
      })) as { items: Manifest[] };
      expect(list.items.map((i) => i.metadata.name).sort()).to.deep.equal(["a", "c"]);
    });

    it("ignores status written through the main resource (only the status subresource writes it)", async () => {
      const manifest = schedule("status-ignored", validSpec);
      manifest.status = { lastScheduleTime: "2026-01-01T00:00:00Z", missedRuns: 0 };
      expect((await apply(manifest)).code).to.equal(0);
      expect((await get("status-ignored")).status).to.equal(undefined);
    });
  });

  describe("invalid input is refused with a message naming the field", () => {
    invalidSpecs.forEach(({ name, spec, field }, index) => {
      it(`${index + 1} - ${name}`, async () => {
        const result = await apply(schedule(`invalid-${index + 1}`, spec));
        expect(result.code, `accepted: ${result.stdout}`).to.not.equal(0);
        expect(result.stderr).to.include(field);
        const stored = await cp.kubectl([
          "get",
          "vmsnapsched",
          `invalid-${index + 1}`,
          "-n",
          namespace,
        ]);
        expect(stored.code, "nothing is stored").to.not.equal(0);
      });
    });
  });
});
