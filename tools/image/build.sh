#!/usr/bin/env bash
# `make image`: builds the agent image from the Dockerfile with buildah, without a container
# daemon, from a fresh machine: installs buildah/podman/runc/mmdebstrap from Debian if missing,
# picks the base (tools/image/base.sh: the registry's debian:12-slim, or one bootstrapped from
# Debian packages when no registry answers), builds, then prints the image's size and what is in
# it and refuses an image with a compiler, npm or node_modules (tools/image/inspect.sh).
#
# Environment: IMAGE_TAG (default vmsnap-controller:<package.json version>, as the DaemonSet
# names it), IMAGE_BASE (skip the choice of base), IMAGE_BUILD_ARGS (more buildah arguments).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
cd "$here/../.."

PACKAGES=(buildah podman runc mmdebstrap curl ca-certificates)
missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q '^install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "image: installing ${missing[*]}" >&2
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

version=$(sed -n 's/^  "version": "\(.*\)",$/\1/p' package.json)
tag=localhost/${IMAGE_TAG:-vmsnap-controller:$version}
base=$("$here/base.sh")

args=(build --layers --build-arg "BASE=$base" --tag "$tag" --file Dockerfile)
# Behind a TLS-intercepting proxy the build's downloads need the machine's CA bundle (it holds the
# proxy's CA); given as a build secret it is never stored in a layer.
ca=${IMAGE_CA_BUNDLE:-/etc/ssl/certs/ca-certificates.crt}
[ -s "$ca" ] && args+=(--secret "id=ca-bundle,src=$ca")
# shellcheck disable=SC2206 # word splitting is the point
[ -n "${IMAGE_BUILD_ARGS:-}" ] && args+=($IMAGE_BUILD_ARGS)

started=$(date +%s)
"$here/engine.sh" buildah "${args[@]}" .
echo "image: built $tag from $base in $(($(date +%s) - started)) s" >&2
"$here/inspect.sh" "$tag"
