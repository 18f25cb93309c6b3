#!/usr/bin/env bash
# Prints the base image reference the Dockerfile's BASE should be: $IMAGE_BASE when set; the
# registry's debian:12-slim when its registry answers; otherwise a Debian 12 root filesystem
# bootstrapped here from Debian packages with mmdebstrap (no registry needed, only the Debian
# mirror), imported into the local container storage as localhost/vmsnap-base:bookworm-KEY.
#
# The bootstrap is cached under ~/.cache/vmsnap/image-base/KEY/ (rootfs.tar and packages.txt,
# the package list it came out with), KEY being a hash of the recipe below: the suite, the
# variant, the mirrors and the dpkg path filters. A changed recipe bootstraps afresh; an unchanged
# one is imported from the cache (a fresh clone on the same machine) or found in the storage.
# Log lines go to stderr; stdout is only the reference.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
REGISTRY_BASE=docker.io/library/debian:12-slim
REGISTRY_PROBE=https://registry-1.docker.io/v2/

if [ -n "${IMAGE_BASE:-}" ]; then
  echo "base: $IMAGE_BASE (from IMAGE_BASE)" >&2
  echo "$IMAGE_BASE"
  exit 0
fi
# Any HTTP answer (401 included) means the registry is reachable; 000 means it is not.
if [ "$(curl -s -o /dev/null -m 5 -w '%{http_code}' "$REGISTRY_PROBE" || true)" != 000 ]; then
  echo "base: $REGISTRY_BASE (its registry answers)" >&2
  echo "$REGISTRY_BASE"
  exit 0
fi

# ---- the recipe: everything that decides what the base contains ------------------------------
SUITE=bookworm
VARIANT=minbase
MIRRORS=(
  "deb http://deb.debian.org/debian bookworm main"
  "deb http://deb.debian.org/debian bookworm-updates main"
  "deb http://deb.debian.org/debian-security bookworm-security main"
)
# As Debian's -slim images: no manuals, documentation (but the copyrights) or translations.
DPKG_OPTS=(
  "path-exclude=/usr/share/man/*"
  "path-exclude=/usr/share/info/*"
  "path-exclude=/usr/share/doc/*"
  "path-include=/usr/share/doc/*/copyright"
  "path-exclude=/usr/share/locale/*"
)
# Fixed, so two bootstraps of the same packages give the same files (mmdebstrap honours it).
SOURCE_DATE_EPOCH=1735689600
key=$(printf '%s\n' "$SUITE" "$VARIANT" "${MIRRORS[@]}" "${DPKG_OPTS[@]}" "$SOURCE_DATE_EPOCH" |
  sha256sum | cut -c1-12)
ref=localhost/vmsnap-base:$SUITE-$key
cache=${VMSNAP_CACHE_DIR:-$HOME/.cache/vmsnap}/image-base/$key

if "$here/engine.sh" podman image exists "$ref"; then
  echo "base: $ref (in the container storage)" >&2
elif [ -s "$cache/rootfs.tar" ]; then
  echo "base: importing $ref from $cache/rootfs.tar" >&2
  "$here/engine.sh" podman import --quiet "$cache/rootfs.tar" "$ref" >/dev/null
else
  echo "base: no registry; bootstrapping Debian $SUITE ($VARIANT) with mmdebstrap into $cache" >&2
  mkdir -p "$cache"
  dpkg_args=()
  for o in "${DPKG_OPTS[@]}"; do dpkg_args+=("--dpkgopt=$o"); done
  SOURCE_DATE_EPOCH=$SOURCE_DATE_EPOCH mmdebstrap --quiet --mode=root --variant="$VARIANT" \
    --format=tar "${dpkg_args[@]}" \
    --customize-hook='chroot "$1" dpkg-query -W -f="\${Package} \${Version}\n" >"$1/.packages.txt"' \
    --customize-hook="copy-out /.packages.txt $cache" \
    --customize-hook='rm "$1/.packages.txt"' \
    "$SUITE" "$cache/rootfs.tar.tmp" "${MIRRORS[@]}" >&2
  mv "$cache/.packages.txt" "$cache/packages.txt"
  mv "$cache/rootfs.tar.tmp" "$cache/rootfs.tar"
  "$here/engine.sh" podman import --quiet "$cache/rootfs.tar" "$ref" >/dev/null
  echo "base: $ref, $(wc -l <"$cache/packages.txt") packages (list: $cache/packages.txt)" >&2
fi
echo "$ref"
