#!/usr/bin/env bash
# Prints what is in the agent image and its size, and fails when it holds what the runtime image
# must not: a compiler, npm, node_modules, or an addon whose libraries do not resolve.
#
# Usage: tools/image/inspect.sh IMAGE
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
image=${1:?usage: inspect.sh IMAGE}
podman() { "$here/engine.sh" podman "$@"; }

bytes=$(podman image inspect --format '{{.Size}}' "$image")
layers=$(podman image inspect --format '{{len .RootFS.Layers}}' "$image")
echo "image: $image, $((bytes / 1048576)) MiB uncompressed, $layers layers"

# Read-only root and no network, as deployed: nothing here may need to write or fetch.
podman run --rm --read-only --network none --entrypoint /bin/sh "$image" -c '
  set -eu
  echo "  node        $(node --version) at $(command -v node)"
  echo "  libvirt0    $(dpkg-query -W -f="\${Version}" libvirt0)"
  echo "  ceph-common $(dpkg-query -W -f="\${Version}" ceph-common) ($(rbd --version | cut -d" " -f1-3))"
  echo "  packages    $(dpkg-query -W | wc -l) Debian packages; largest (KiB):"
  dpkg-query -W -f="\${Installed-Size} \${Package}\n" | sort -rn | head -8 | sed "s/^/                /"
  echo "  /app        $(du -sk /app | cut -f1) KiB:"
  find /app -type f | sort | sed "s/^/                /"
  bad=0
  for tool in cc gcc g++ c++ clang make npm npx node-gyp; do
    if command -v "$tool" >/dev/null; then echo "  REFUSED: $tool is in the image" >&2; bad=1; fi
  done
  modules=$(find / -xdev -type d -name node_modules 2>/dev/null | head -3)
  if [ -n "$modules" ]; then echo "  REFUSED: node_modules in the image: $modules" >&2; bad=1; fi
  unresolved=$(ldd /app/native/build/Release/vmsnap_libvirt.node | grep "not found" || true)
  if [ -n "$unresolved" ]; then echo "  REFUSED: the addon does not link: $unresolved" >&2; bad=1; fi
  # Loading it proves the addon and libvirt0 agree (symbols, versions), not just that files exist.
  node -e "process.dlopen({ exports: {} }, \"/app/native/build/Release/vmsnap_libvirt.node\")"
  echo "  addon       loads against the image libvirt (process.dlopen)"
  exit $bad
'
