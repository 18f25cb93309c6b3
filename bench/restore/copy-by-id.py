# The same copy by snapshot id through python3-rbd (Debian's, /usr/bin/python3), for comparison with the
# librbd module. Usage: copy-by-id.py CONF CLIENT KEYRING POOL IMAGE GROUP GROUP_SNAP DEST diff|full
import rados, rbd, sys, time, resource, json
conf, cid, keyring, pool, src, group, gsnap, dst, mode = sys.argv[1:10]
t0=time.monotonic(); r0=resource.getrusage(resource.RUSAGE_SELF)
cl = rados.Rados(conffile=conf, rados_id=cid, conf={"keyring": keyring}); cl.connect()
io = cl.open_ioctx(pool)
img = rbd.Image(io, src, read_only=True)
snap = [s for s in img.list_snaps() if s.get("namespace")==rbd.RBD_SNAP_NAMESPACE_TYPE_GROUP and s["group"]["name"]==group and s["group"]["snap_name"]==gsnap]
if not snap:
    snap=[s for s in img.list_snaps()]
    print(snap); sys.exit(2)
img.set_snap_by_id(snap[0]["id"])
size = img.size()
rbd.RBD().create(io, dst, size, order=22, old_format=False, features=rbd.RBD_FEATURE_LAYERING|rbd.RBD_FEATURE_EXCLUSIVE_LOCK|rbd.RBD_FEATURE_OBJECT_MAP|rbd.RBD_FEATURE_FAST_DIFF|rbd.RBD_FEATURE_DEEP_FLATTEN)
out = rbd.Image(io, dst)
copied=0
CH=4<<20
if mode=="diff":
    extents=[]
    img.diff_iterate(0, size, None, lambda off, ln, ex: extents.append((off,ln)) if ex else None)
    for off, ln in extents:
        p=off
        while p<off+ln:
            n=min(CH, off+ln-p); out.write(img.read(p,n), p); p+=n; copied+=n
else:
    p=0
    while p<size:
        n=min(CH,size-p); data=img.read(p,n)
        if data.count(0)!=len(data): out.write(data,p); copied+=n
        p+=n
out.close(); img.close(); io.close(); cl.shutdown()
r1=resource.getrusage(resource.RUSAGE_SELF)
print(json.dumps({"mode":mode,"ms":round((time.monotonic()-t0)*1000),"cpu_ms":round((r1.ru_utime+r1.ru_stime-r0.ru_utime-r0.ru_stime)*1000),"copied":copied,"size":size}))
