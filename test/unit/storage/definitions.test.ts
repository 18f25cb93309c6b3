// Where a snapshot's domain definition is kept, and that its secrets never reach a message: the
// RBD home through an injected runner (the real CLI is in test/integration/restore), the file
// home on a real temporary folder, and the registry's choice between them.
import { expect } from "chai";
import { mkdtemp, readdir, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { DiskSnapshotHandle, StorageBackend } from "../../../src/storage/backend.ts";
import {
  definitionFile,
  readDefinitionFile,
  removeDefinitionFile,
  storeDefinitionFile,
} from "../../../src/storage/libvirt-file/definitions.ts";
import {
  definitionImage,
  readDefinition,
  removeDefinition,
  storeDefinition,
} from "../../../src/storage/rbd/definitions.ts";
import { isStorageError, StorageError } from "../../../src/storage/rbd/errors.ts";
import type { RbdResult, RbdRunner } from "../../../src/storage/rbd/runner.ts";
import { StorageRegistry } from "../../../src/storage/registry.ts";

const XML = "<domain><name>web</name><graphics type='vnc' passwd='s3cret'/></domain>";
const OK: RbdResult = { exitCode: 0, stdout: "", stderr: "" };
const ENOENT: RbdResult = {
  exitCode: 2,
  stdout: "",
  stderr:
    "rbd: failed to get metadata vmsnap.definition.s of image : (2) No such file or directory\n",
};
const vda: DiskSnapshotHandle = {
  target: "vda",
  backend: "rbd",
  source: "rbd/web-a",
  snapshot: "rbd/vmsnap-x@s",
};

function recording(answer: (args: readonly string[]) => RbdResult | Promise<RbdResult>) {
  const calls: (readonly string[])[] = [];
  const runner: RbdRunner = async (args) => {
    calls.push(args);
    return answer(args);
  };
  return { runner, calls };
}

describe("domain definitions kept with the disk snapshots", () => {
  describe("in Ceph, as image metadata", () => {
    it("lives on the image of the disk it is kept with", () => {
      expect(definitionImage(vda)).to.equal("rbd/web-a");
    });

    it("is set, read back without the CLI's newline, and removed under one key per snapshot", async () => {
      const { runner, calls } = recording((args) =>
        args[1] === "get" ? { ...OK, stdout: `${XML}\n` } : OK,
      );
      const where = await storeDefinition(runner, "vmsnap-1", vda, XML);
      expect(where).to.equal("rbd/web-a image-meta vmsnap.definition.vmsnap-1");
      expect(await readDefinition(runner, "vmsnap-1", vda)).to.equal(XML);
      await removeDefinition(runner, "vmsnap-1", vda);
      expect(calls).to.deep.equal([
        ["image-meta", "set", "rbd/web-a", "vmsnap.definition.vmsnap-1", XML],
        ["image-meta", "get", "rbd/web-a", "vmsnap.definition.vmsnap-1"],
        ["image-meta", "remove", "rbd/web-a", "vmsnap.definition.vmsnap-1"],
      ]);
    });

    it("reads none and removes nothing when the key or its image is gone", async () => {
      const { runner } = recording(() => ENOENT);
      expect(await readDefinition(runner, "vmsnap-1", vda)).to.equal(undefined);
      await removeDefinition(runner, "vmsnap-1", vda);
    });

    it("never puts the XML (its secrets) into an error, whether rbd fails or is killed", async () => {
      const failing = recording(() => ({
        exitCode: 13,
        stdout: "",
        stderr: "rbd: (13) Permission denied\n",
      }));
      const refused = await storeDefinition(failing.runner, "vmsnap-1", vda, XML).catch(
        (e: unknown) => e,
      );
      expect(isStorageError(refused, "PermissionDenied"), String(refused)).to.equal(true);
      expect(JSON.stringify(refused) + String(refused)).to.not.include("s3cret");
      expect(String(refused)).to.include(`<domain definition, ${Buffer.byteLength(XML)} bytes>`);

      const killed = recording((args) =>
        Promise.reject(
          new StorageError("StorageTimeout", `rbd ${args.join(" ")}: no answer; killed`, {
            command: args,
          }),
        ),
      );
      const timedOut = (await storeDefinition(killed.runner, "vmsnap-1", vda, XML).catch(
        (e: unknown) => e,
      )) as StorageError;
      expect(timedOut.reason).to.equal("StorageTimeout");
      expect(timedOut.message + JSON.stringify(timedOut.details)).to.not.include("s3cret");
    });

    it("refuses a definition too long for one command-line argument, saying so", async () => {
      const { runner, calls } = recording(() => OK);
      const huge = `<domain>${"x".repeat(130 * 1024)}</domain>`;
      const err = await storeDefinition(runner, "vmsnap-1", vda, huge).catch((e: unknown) => e);
      expect(String(err)).to.match(/bytes; rbd image-meta takes at most/);
      expect(calls).to.have.length(0);
    });
  });

  describe("beside file disks", () => {
    let folder: string;
    beforeEach(async () => {
      folder = await mkdtemp(join(tmpdir(), "vmsnap-definition-"));
    });
    afterEach(async () => {
      await rm(folder, { recursive: true, force: true });
    });
    const fileHandle = () => ({
      target: "vda",
      backend: "libvirt-file",
      source: join(folder, "a.qcow2"),
      snapshot: "web@s",
    });

    it("is a 0600 file in its disk's folder, read back whole, removed idempotently", async () => {
      const where = await storeDefinitionFile("vmsnap-1", fileHandle(), XML);
      expect(where).to.equal(join(folder, "vmsnap-1.definition.xml"));
      expect(definitionFile("vmsnap-1", fileHandle())).to.equal(where);
      expect((await stat(where)).mode & 0o777).to.equal(0o600);
      expect(await readDefinitionFile("vmsnap-1", fileHandle())).to.equal(XML);
      await removeDefinitionFile("vmsnap-1", fileHandle());
      await removeDefinitionFile("vmsnap-1", fileHandle());
      expect(await readDefinitionFile("vmsnap-1", fileHandle())).to.equal(undefined);
      expect(await readdir(folder)).to.deep.equal([]);
    });
  });

  describe("the registry's choice", () => {
    function keeper(kind: string, kept: Map<string, string>): StorageBackend {
      return {
        kind,
        create: async () => [],
        remove: async () => {},
        rollback: async () => {},
        diskOf: () => {
          throw new Error("not used");
        },
        storeDefinition: async ({ name, handle, xml }) => {
          kept.set(`${kind}:${name}:${handle.target}`, xml);
          return `${kind} place`;
        },
        readDefinition: async ({ name, handle }) => kept.get(`${kind}:${name}:${handle.target}`),
        removeDefinition: async ({ name, handle }) => {
          kept.delete(`${kind}:${name}:${handle.target}`);
        },
      };
    }
    const mixed: DiskSnapshotHandle[] = [
      { target: "vda", backend: "libvirt-file", source: "/v/a.qcow2", snapshot: "web@s" },
      { target: "vdb", backend: "rbd", source: "rbd/b", snapshot: "rbd/b@s" },
    ];

    it("keeps a mixed snapshot's definition with its RBD disks (every node reads them)", async () => {
      const kept = new Map<string, string>();
      const registry = new StorageRegistry([keeper("rbd", kept), keeper("libvirt-file", kept)]);
      expect(await registry.storeDefinition("s", mixed, XML)).to.deep.equal({
        backend: "rbd",
        location: "rbd place",
      });
      expect([...kept.keys()]).to.deep.equal(["rbd:s:vdb"]);
      expect(await registry.readDefinition("s", mixed)).to.equal(XML);
      await registry.removeDefinition("s", mixed);
      expect(kept.size).to.equal(0);
    });

    it("keeps it with the first of that backend's disks by target, whatever order status lists them in", async () => {
      const kept = new Map<string, string>();
      const registry = new StorageRegistry([keeper("rbd", kept)]);
      const disks: DiskSnapshotHandle[] = ["vdc", "vdb", "vdd"].map((target) => ({
        target,
        backend: "rbd",
        source: `rbd/${target}`,
        snapshot: "rbd/g@s",
      }));
      await registry.storeDefinition("s", disks, XML);
      expect([...kept.keys()]).to.deep.equal(["rbd:s:vdb"]);
      expect(await registry.readDefinition("s", [...disks].reverse())).to.equal(XML);
    });

    it("keeps none when no backend of the snapshot's disks can keep one", async () => {
      const kept = new Map<string, string>();
      const plain: StorageBackend = { ...keeper("rbd", kept) };
      delete (plain as { storeDefinition?: unknown }).storeDefinition;
      const registry = new StorageRegistry([plain]);
      expect(await registry.storeDefinition("s", [mixed[1]!], XML)).to.equal(undefined);
      expect(await registry.readDefinition("s", [mixed[1]!])).to.equal(undefined);
    });
  });
});
