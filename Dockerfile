# syntax=docker/dockerfile:1
# The vmsnap agent image: Node 24, the libvirt addon built against this Debian's libvirt, and the
# Ceph CLI (`rbd`) the storage backend calls. Both stages use the same Debian release (bookworm,
# as the development and CI machines), so the addon links against the libvirt it runs with.
ARG NODE_IMAGE=node:24-bookworm-slim

# ---- build: native addon and TypeScript ------------------------------------------------------
FROM ${NODE_IMAGE} AS build
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      libvirt-dev pkg-config python3 g++ make \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /app
# node-gyp must build against the headers shipped with this Node (under /usr/local/include/node),
# never download them: the build may have no route to the internet beyond the package mirrors.
ENV npm_config_nodedir=/usr/local \
    npm_config_update_notifier=false \
    npm_config_fund=false \
    npm_config_audit=false
# Manifests and the addon sources first, so source edits do not invalidate the npm ci layer.
COPY package.json package-lock.json ./
COPY native/binding.gyp native/
COPY native/src/ native/src/
# Also runs package.json's "install" script: node-gyp rebuild --directory native.
RUN npm ci --no-progress
COPY tsconfig.json ./
COPY src/ src/
COPY tools/bundle.ts tools/
# One file per entry point with only the code it uses: client-node imported whole costs ~80 MiB
# of RSS, its tree-shaken part a few MiB (tools/bundle.ts). node_modules stays in this stage.
RUN npm run bundle

# ---- runtime ---------------------------------------------------------------------------------
FROM ${NODE_IMAGE}
LABEL org.opencontainers.image.title="vmsnap-controller" \
      org.opencontainers.image.description="Consistent live snapshots of libvirt/QEMU VMs, driven by the VMSnapshot resource" \
      org.opencontainers.image.licenses="Apache-2.0"
# libvirt0: the client library the addon links (libvirt.so.0, libvirt-qemu.so.0).
# ceph-common: the rbd CLI and its libraries.
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      libvirt0 ceph-common \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /app
ENV NODE_ENV=production
# The bundles (with their own package.json marking them ES modules); no node_modules needed.
COPY --from=build /app/dist/bundle/ dist/bundle/
# The addon is found by walking up from dist/bundle to native/build/Release.
COPY --from=build /app/native/build/Release/vmsnap_libvirt.node native/build/Release/
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
