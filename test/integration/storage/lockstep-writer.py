# A guest-like writer for the atomicity test: increments a counter and writes it to image A,
# then to image B, each write acknowledged before the next, as fast as librbd allows. At every
# instant A == B or A == B + 1, so any snapshot that shows otherwise is not a consistent cut.
# It goes through librbd (not raw RADOS objects) so writes honour snapshots and exclusive locks
# exactly as QEMU's would. Usage: lockstep-writer.py CONF CLIENT_ID KEYRING POOL IMAGE_A IMAGE_B
import signal
import sys

import rados
import rbd

conf, client_id, keyring, pool, image_a, image_b = sys.argv[1:7]
stopping = False


def stop(_signum, _frame):
    global stopping
    stopping = True


signal.signal(signal.SIGTERM, stop)
cluster = rados.Rados(conffile=conf, rados_id=client_id, conf={"keyring": keyring})
cluster.connect(timeout=10)
ioctx = cluster.open_ioctx(pool)
a = rbd.Image(ioctx, image_a)
b = rbd.Image(ioctx, image_b)
n = 0
print("ready", flush=True)
while not stopping:
    n += 1
    block = ("%020d" % n).encode().ljust(512, b"\0")
    a.write(block, 0)
    b.write(block, 0)
a.close()
b.close()
ioctx.close()
cluster.shutdown()
print("wrote %d" % n, flush=True)
