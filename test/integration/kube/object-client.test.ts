// The kind-generic object client and Event recorder against a real kube-apiserver, driven with
// the VMSnapshot descriptor: create, get, list by field selector, delete (twice), status and
// finalizer writes that are conditional on resourceVersion (a stale one is a ConflictError), and
// an Event that names the object it regards by the object's own apiVersion, kind and uid.
import { EventsV1Api } from "@kubernetes/client-node";
import { expect } from "chai";
import { snapshotsOnNode, vmsnapshots, type VMSnapshot } from "../../../src/api/types.ts";
import { ConflictError, KubeObjectClient } from "../../../src/kube/object-client.ts";
import { KubeEventRecorder } from "../../../src/kube/recorder.ts";
import { objectKey } from "../../../src/kube/resource.ts";
import { getControlPlane, type ControlPlane } from "../../support/kube/control-plane.ts";

describe("KubeObjectClient and KubeEventRecorder on a real kube-apiserver", function () {
  this.timeout(120_000);
  let cp: ControlPlane;
  let client: KubeObjectClient<VMSnapshot>;

  before(async () => {
    cp = await getControlPlane();
    client = new KubeObjectClient<VMSnapshot>(cp.kubeConfig(), vmsnapshots);
  });

  const snapshot = (namespace: string, name: string, node: string): VMSnapshot => ({
    apiVersion: "vmsnap.io/v1alpha1",
    kind: "VMSnapshot",
    metadata: { namespace, name },
    spec: { source: { domain: name, node } },
  });

  it("creates, gets, lists by field selector and deletes; a second delete succeeds", async () => {
    const ns = await cp.newNamespace("objclient");
    const created = await client.create(snapshot(ns, "mine", "hv-a"));
    await client.create(snapshot(ns, "other", "hv-b"));
    expect(created.metadata.uid).to.be.a("string");

    expect((await client.get(ns, "mine"))?.metadata.uid).to.equal(created.metadata.uid);
    expect(await client.get(ns, "absent")).to.equal(undefined);
    const onA = await client.list(ns, { fieldSelector: snapshotsOnNode("hv-a") });
    expect(onA.map(objectKey)).to.deep.equal([`${ns}/mine`]);
    expect((await client.list(ns)).map(objectKey).sort()).to.deep.equal([
      `${ns}/mine`,
      `${ns}/other`,
    ]);

    await client.delete(ns, "mine");
    await client.delete(ns, "mine");
    expect(await client.get(ns, "mine")).to.equal(undefined);
  });

  it("writes status through the subresource only while the object is unchanged since read", async () => {
    const ns = await cp.newNamespace("objclient");
    const read = await client.create(snapshot(ns, "s", "hv-a"));
    const written = await client.patchStatus(read, { phase: "Pending" });
    expect(written.status?.phase).to.equal("Pending");
    expect(written.metadata.resourceVersion).to.not.equal(read.metadata.resourceVersion);

    let refused: unknown;
    await client.patchStatus(read, { phase: "Failed" }).catch((err: unknown) => (refused = err));
    expect(refused).to.be.instanceOf(ConflictError);
    expect((refused as Error).message).to.contain(`${ns}/s`);
    expect((await client.get(ns, "s"))?.status?.phase).to.equal("Pending");
  });

  it("sets finalizers only while the object is unchanged since read", async () => {
    const ns = await cp.newNamespace("objclient");
    const read = await client.create(snapshot(ns, "f", "hv-a"));
    const withFinalizer = await client.setFinalizers(read, ["vmsnap.io/test"]);
    expect(withFinalizer.metadata.finalizers).to.deep.equal(["vmsnap.io/test"]);

    let refused: unknown;
    await client.setFinalizers(read, []).catch((err: unknown) => (refused = err));
    expect(refused).to.be.instanceOf(ConflictError);

    const cleared = await client.setFinalizers(withFinalizer, []);
    expect(cleared.metadata.finalizers ?? []).to.deep.equal([]);
    await client.delete(ns, "f");
  });

  it("records an Event regarding the object by its own apiVersion, kind, name and uid", async () => {
    const ns = await cp.newNamespace("objclient");
    const object = await client.create(snapshot(ns, "e", "hv-a"));
    const recorder = new KubeEventRecorder(cp.kubeConfig(), "hv-a");
    recorder.record(object, "Normal", "Tested", "Test", "a note");
    await recorder.flush();

    const events = await cp.kubeConfig().makeApiClient(EventsV1Api).listNamespacedEvent({
      namespace: ns,
    });
    expect(events.items).to.have.length(1);
    const event = events.items[0]!;
    expect(event.regarding).to.deep.include({
      apiVersion: "vmsnap.io/v1alpha1",
      kind: "VMSnapshot",
      namespace: ns,
      name: "e",
      uid: object.metadata.uid,
    });
    expect(event).to.deep.include({ reason: "Tested", action: "Test", note: "a note" });
    expect(event.reportingController).to.equal("vmsnap.io/agent");
  });

  it("records Events for a 253-character name from an agent on a 200-character node name", async () => {
    const ns = await cp.newNamespace("objclient");
    const long = `${"a".repeat(120)}.${"b".repeat(120)}.${"c".repeat(11)}`;
    expect(long).to.have.length(253);
    const object = await client.create({
      ...snapshot(ns, long, "hv-a"),
      spec: { source: { domain: "vm", node: "hv-a" } },
    });
    const node = `${"n".repeat(100)}.${"m".repeat(99)}`;
    const recorder = new KubeEventRecorder(cp.kubeConfig(), node, (message, fields) => {
      throw new Error(`${message}: ${JSON.stringify(fields)}`);
    });
    recorder.record(object, "Normal", "First", "Test", "one");
    recorder.record(object, "Normal", "Second", "Test", "two");
    await recorder.flush();
    const events = await cp.kubeConfig().makeApiClient(EventsV1Api).listNamespacedEvent({
      namespace: ns,
    });
    expect(events.items.map((e) => e.reason).sort()).to.deep.equal(["First", "Second"]);
    for (const event of events.items) {
      expect(event.regarding?.name).to.equal(long);
      expect(event.metadata?.name?.length).to.be.at.most(253);
      expect(event.reportingInstance!.length).to.be.at.most(128);
    }
  });
});
