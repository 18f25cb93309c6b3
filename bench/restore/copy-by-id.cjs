// Copies one image snapshot, addressed by id, into a new image through the librbd module; prints its
// result plus wall and CPU time. Usage: CEPH_DIR=/tmp/vc-XXXX node copy-by-id.cjs IMAGE SNAP_ID DEST
const m = require(
  require("node:path").join(__dirname, "../../native/build/Release/vmsnap_rbd.node"),
);
const [image, snapId, dest] = process.argv.slice(2);
const dir = process.env.CEPH_DIR;
const t0 = process.hrtime.bigint();
const c0 = process.cpuUsage();
m.copySnapshot({
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
}).then(
  (r) => {
    const c = process.cpuUsage(c0);
    console.log(
      JSON.stringify({
        ...r,
        wallMs: Number(process.hrtime.bigint() - t0) / 1e6,
        cpuMs: (c.user + c.system) / 1000,
      }),
    );
  },
  (e) => {
    console.log("ERR", e.message, e.errno, e.operation);
    process.exitCode = 1;
  },
);
