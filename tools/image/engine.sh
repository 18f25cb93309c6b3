#!/usr/bin/env bash
# Runs buildah or podman configured for a machine without systemd and without a container
# daemon, as root: the image build (tools/image/build.sh) and the DaemonSet test both go through
# here, so they see the same storage and the same settings. What each setting works around is
# measured and written down in docs/image-facts.md:
# - runtime runc: crun 1.8 (Debian 12) refuses a cgroup v1/v2 hybrid whose v2 hierarchy has a
#   controller ("cgroups in hybrid mode not supported"); runc 1.1 runs there.
# - cgroup_manager cgroupfs and events_logger file: there is no systemd (no D-Bus, no journald).
# - default_ulimits: as root, podman asks for RLIMIT_NOFILE 1048576 and RLIMIT_NPROC 4194304,
#   and the container's init may not raise them beyond this process's hard limits; runc's init
#   was also refused an NPROC above kernel.pid_max. So: this shell's hard limits, capped at pid_max.
#
# Usage: tools/image/engine.sh podman|buildah ARGS...
set -euo pipefail
engine=${1:?usage: engine.sh podman|buildah ARGS...}
shift
case "$engine" in podman | buildah) ;; *) echo "engine.sh: podman or buildah, not $engine" >&2; exit 2 ;; esac

conf_dir=${VMSNAP_CACHE_DIR:-$HOME/.cache/vmsnap}/image
mkdir -p "$conf_dir"
nofile=$(ulimit -Hn)
nproc=$(ulimit -Hu)
pid_max=$(cat /proc/sys/kernel/pid_max)
[ "$nofile" = unlimited ] && nofile=1048576
if [ "$nproc" = unlimited ] || [ "$nproc" -gt "$pid_max" ]; then nproc=$pid_max; fi
conf=$conf_dir/containers.conf
cat >"$conf.$$" <<CONF
# Written by tools/image/engine.sh on every call; see there for why.
[containers]
default_ulimits = ["nofile=$nofile:$nofile", "nproc=$nproc:$nproc"]

[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
CONF
mv "$conf.$$" "$conf"
export CONTAINERS_CONF=$conf
# buildah takes its runtime from here, not from containers.conf.
export BUILDAH_RUNTIME=runc
exec "$engine" "$@"
