#!/bin/bash
# Restore measurements on a throw-away cluster (test/support/ceph.ts, pool vmsnap-test, client vmsnap):
# group snapshot of a 64 MiB image (full) and a 1 GiB image (512 MiB written); copy of each member by
# snapshot id through the librbd module and through python3-rbd; group and image rollback timings.
# Usage: NODE=.toolchain/node-v24.21.0/bin/node bench/restore/measure.sh /tmp/vc-XXXX   (results: docs/restore-facts.md)
D="${1:?cluster folder (ceph.conf, client.vmsnap.keyring)}"; C="rbd -c $D/ceph.conf --id vmsnap --keyring $D/client.vmsnap.keyring"; P=vmsnap-test
N="${NODE:-node}"; HERE="$(dirname "$0")"; export CEPH_DIR="$D"
t() { local s=$(date +%s%N); "$@" >/dev/null 2>&1; local rc=$?; echo "$(( ($(date +%s%N)-s)/1000000 )) ms rc=$rc: $*" | sed "s#$D#D#g"; }
$C create --size 64M $P/small; $C create --size 1G $P/large
$C bench --io-type write --io-size 4M --io-total 64M --io-pattern seq $P/small >/dev/null 2>&1
$C bench --io-type write --io-size 4M --io-total 512M --io-pattern seq $P/large >/dev/null 2>&1
$C group create $P/g; $C group image add $P/g $P/small; $C group image add $P/g $P/large
t $C group snap create $P/g@s1
SS=$($C snap ls --all --format json $P/small | /usr/bin/python3 -c 'import json,sys;print(json.load(sys.stdin)[0]["id"])')
SL=$($C snap ls --all --format json $P/large | /usr/bin/python3 -c 'import json,sys;print(json.load(sys.stdin)[0]["id"])')
echo "ids $SS $SL"
echo "== addon copy"
/usr/bin/time -f "%e s wall %U user %S sys %M KB" $N --import tsx "$HERE/copy-by-id.ts" small $SS small-a 2>&1
/usr/bin/time -f "%e s wall %U user %S sys %M KB" $N --import tsx "$HERE/copy-by-id.ts" large $SL large-a 2>&1
echo "== python3-rbd copy (diff)"
/usr/bin/time -f "%e s wall %U user %S sys %M KB" /usr/bin/python3 "$HERE/copy-by-id.py" $D/ceph.conf vmsnap $D/client.vmsnap.keyring $P small g s1 small-p diff 2>&1
echo "== verify"
cmp <($C export --no-progress $P/small - 2>/dev/null) <($C export --no-progress $P/small-a - 2>/dev/null) && echo small-same
cmp <($C export --no-progress $P/large - 2>/dev/null) <($C export --no-progress $P/large-a - 2>/dev/null) && echo large-same
$C image-meta list $P/large-a
$C du $P/large-a 2>/dev/null
for i in small-a large-a small-p; do $C rm --no-progress $P/$i >/dev/null 2>&1; done
echo "== rollback after 16 MiB rewritten on each"
$C bench --io-type write --io-size 4M --io-total 16M --io-pattern rand $P/small >/dev/null 2>&1
$C bench --io-type write --io-size 4M --io-total 16M --io-pattern rand $P/large >/dev/null 2>&1
t $C group snap rollback --no-progress $P/g@s1
echo "== rollback after 256 MiB rewritten on large"
$C bench --io-type write --io-size 4M --io-total 256M --io-pattern rand $P/large >/dev/null 2>&1
t $C group snap rollback --no-progress $P/g@s1
t $C group snap rollback --no-progress $P/g@s1
echo "== image snapshot rollback, 64 MiB, 16 MiB rewritten"
$C snap create $P/small@u1; $C bench --io-type write --io-size 4M --io-total 16M --io-pattern rand $P/small >/dev/null 2>&1
t $C snap rollback --no-progress $P/small@u1
$C snap rm $P/small@u1
