// Copies one image snapshot, addressed by id, into a new image through the librbd module; prints
// its result plus wall and CPU time.
// Usage: CEPH_DIR=/tmp/vc-XXXX node --import tsx bench/restore/copy-by-id.ts IMAGE SNAP_ID DEST
import { loadNativeRbd } from "../../src/storage/rbd/native-copy.ts";

const [image, snapId, dest] = process.argv.slice(2);
const dir = process.env.CEPH_DIR;
if (!image || !snapId || !dest || !dir)
  throw new Error("usage: CEPH_DIR=… copy-by-id.ts IMAGE SNAP_ID DEST");
const started = process.hrtime.bigint();
const cpu = process.cpuUsage();
try {
  const result = await loadNativeRbd().copySnapshot({
    confPath: `${dir}/ceph.conf`,
    clientId: "vmsnap",
    keyringPath: `${dir}/client.vmsnap.keyring`,
    pool: "vmsnap-test",
    image,
    snapId: Number(snapId),
    destPool: "vmsnap-test",
    destImage: dest,
    markerKey: "vmsnap.copied-from",
    markerValue: `${image}@${snapId}`,
  });
  const used = process.cpuUsage(cpu);
  console.log(
    JSON.stringify({
      ...result,
      wallMs: Number(process.hrtime.bigint() - started) / 1e6,
      cpuMs: (used.user + used.system) / 1000,
    }),
  );
} catch (err) {
  console.log("ERR", String(err));
  process.exitCode = 1;
}
