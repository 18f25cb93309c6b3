// The thaw guard's sidecar as deploy/ renders it, read with the same parsers the two processes
// use: the guard listens where the controller connects, in a folder only the pod shares, with
// the libvirt socket it needs, nothing that could restart it needlessly, and a termination grace
// that covers its final thaw under the thaw policy it runs with.
import { expect } from "chai";
import { existsSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { parseAllDocuments } from "yaml";

import { parseConfig, type AgentConfig } from "../../../src/config.ts";
import { fromArgv } from "../../../src/guard/guard-args.ts";
import { retryDelayMs } from "../../../src/hypervisor/thaw-backoff.ts";
import { DEFAULT_THAW_POLICY, GUARD_THAW_POLICY } from "../../../src/hypervisor/thaw.ts";
import { controlPlaneBinDir } from "../../support/kube/control-plane.ts";
import { REPO_ROOT, run } from "../operate/run.ts";

interface Container {
  name: string;
  image: string;
  command?: string[];
  args?: string[];
  env?: { name: string; value?: string }[];
  restartPolicy?: string;
  livenessProbe?: unknown;
  readinessProbe?: unknown;
  startupProbe?: unknown;
  resources: { requests?: Record<string, string>; limits?: Record<string, string> };
  securityContext: Record<string, unknown>;
  volumeMounts: { name: string; mountPath: string }[];
}

interface PodSpec {
  initContainers?: Container[];
  containers: Container[];
  volumes: { name: string; emptyDir?: object; hostPath?: { path: string } }[];
  terminationGracePeriodSeconds: number;
}

describe("deploy/: the thaw guard sidecar", () => {
  let pod: PodSpec;
  let guard: Container;
  let controller: Container;

  before(async () => {
    const rendered = await run(join(controlPlaneBinDir(), "kubectl"), ["kustomize", "deploy"]);
    expect(rendered.code, rendered.stderr).to.equal(0);
    const daemonSet = parseAllDocuments(rendered.stdout)
      .map((d) => d.toJS() as { kind: string; spec: { template: { spec: PodSpec } } })
      .find((m) => m.kind === "DaemonSet")!;
    pod = daemonSet.spec.template.spec;
    guard = (pod.initContainers ?? []).find((c) => c.name === "thaw-guard")!;
    controller = pod.containers.find((c) => c.name === "controller")!;
    expect(guard, "an init container named thaw-guard").to.not.equal(undefined);
  });

  const mountOf = (c: Container, dir: string) => c.volumeMounts.find((m) => m.mountPath === dir);

  it("is a native sidecar: started before the controller, stopped after it, restarted alone", () => {
    expect(guard.restartPolicy).to.equal("Always");
    expect(guard.image, "the controller's image").to.equal(controller.image);
  });

  it("runs guard-main from the image in server mode, where the controller connects", () => {
    expect(guard.command).to.deep.equal(["node", "dist/bundle/guard-main.js"]);
    expect(existsSync(join(REPO_ROOT, "src/guard/guard-main.ts"))).to.equal(true);
    expect(readFileSync(join(REPO_ROOT, "Dockerfile"), "utf8")).to.include(
      "COPY --from=build /app/dist/bundle/ dist/bundle/",
    );
    const guardConfig = fromArgv(guard.args ?? []);
    const env = Object.fromEntries((controller.env ?? []).map((e) => [e.name, e.value]));
    const config = parseConfig(controller.args ?? [], { ...env, NODE_NAME: "hv-1" }) as AgentConfig;
    expect(config.guardSocket, "the controller's --guard-socket").to.be.a("string");
    expect(guardConfig.listen, "the guard's --listen").to.equal(config.guardSocket);
    expect(guardConfig.uri, "the same libvirt as the controller").to.equal(config.libvirtUri);
  });

  it("shares the socket's folder with the controller through an emptyDir, and mounts libvirt's", () => {
    const folder = dirname(fromArgv(guard.args ?? []).listen!);
    const guardMount = mountOf(guard, folder);
    const controllerMount = mountOf(controller, folder);
    expect(guardMount, `the guard mounts ${folder}`).to.not.equal(undefined);
    expect(controllerMount?.name, "the same volume in the controller").to.equal(guardMount!.name);
    const volume = pod.volumes.find((v) => v.name === guardMount!.name)!;
    expect(volume.emptyDir, "a pod-local emptyDir, not a host path").to.not.equal(undefined);
    const libvirt = mountOf(guard, "/var/run/libvirt");
    expect(pod.volumes.find((v) => v.name === libvirt?.name)?.hostPath?.path).to.equal(
      "/var/run/libvirt",
    );
  });

  it("has no probe that could restart it, a memory request and limit, and no CPU limit", () => {
    expect(guard.livenessProbe).to.equal(undefined);
    expect(guard.readinessProbe).to.equal(undefined);
    expect(guard.startupProbe).to.equal(undefined);
    expect(guard.resources.requests).to.have.property("memory");
    expect(guard.resources.limits).to.have.property("memory");
    expect(guard.resources.limits).not.to.have.property("cpu");
  });

  it("is locked down like the controller: no capabilities, read-only root, no escalation", () => {
    expect(guard.securityContext).to.deep.include({
      privileged: false,
      allowPrivilegeEscalation: false,
      readOnlyRootFilesystem: true,
      capabilities: { drop: ["ALL"] },
    });
  });

  // The guard retries until the thaw is confirmed, so no grace period covers every retry; it
  // covers as many hung tries as the old bounded budget had, by the guard's own schedule.
  it("gives the pod a grace period that covers the guard's final thaw through its first tries", () => {
    const p = GUARD_THAW_POLICY;
    let worstMs = 0;
    for (let attempt = 1; attempt <= DEFAULT_THAW_POLICY.attempts; attempt++)
      worstMs += p.callTimeoutMs + (retryDelayMs(p, attempt) ?? 0);
    expect(pod.terminationGracePeriodSeconds * 1000).to.be.above(worstMs);
  });
});
