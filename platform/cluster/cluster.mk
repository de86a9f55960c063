# Local Kubernetes control plane targets; included by the root Makefile, which defines
# FLOTILLA_CACHE (the tool cache) and BIN (.venv/bin). See platform/cluster/README.md.

CLUSTER_SH := platform/cluster/cluster.sh
# The `make cluster-up` cluster: its kwok state and its kubeconfig live in the checkout.
CLUSTER_RUN_DIR := $(CURDIR)/.run/cluster
CLUSTER_KUBECONFIG := $(CLUSTER_RUN_DIR)/kubeconfig
# Fake kwok nodes beside the real one; CLUSTER_REAL_NODE=0 for a kwok-only cluster (no root needed).
CLUSTER_NODES ?= 0
CLUSTER_REAL_NODE ?= 1

.PHONY: cluster-tools cluster-up cluster-down cluster-status cluster-env

cluster-tools: ## Build the control plane, the real node (kubelet, containerd, CNI, CoreDNS) and helm (cached; ~15 min cold); `make tools` adds the Flux controllers
	@platform/cluster/build-tools.sh helm kube etcd kwok containerd cni coredns
	@platform/cluster/node-deps.sh

cluster-up: cluster-tools deps ## Start the local cluster (control plane on 127.0.0.1, a real node) unless it is up; kubeconfig in .run/cluster
	@$(CLUSTER_SH) up --run-dir $(CLUSTER_RUN_DIR) --nodes $(CLUSTER_NODES) $(if $(filter 0,$(CLUSTER_REAL_NODE)),--no-real-node)
	@# The real node pulls every pod's sandbox (pause) image from the cluster's registry.
	@$(if $(filter 0,$(CLUSTER_REAL_NODE)),true,$(BIN)/pipelines images pause >/dev/null)

cluster-down: ## Stop the local control plane and delete its state
	@$(CLUSTER_SH) down --run-dir $(CLUSTER_RUN_DIR)

cluster-status: ## Say whether the local control plane is up
	@$(CLUSTER_SH) status --run-dir $(CLUSTER_RUN_DIR)

cluster-env: ## The KUBECONFIG export of the local control plane (part of `make env`)
	@echo 'export KUBECONFIG="$(CLUSTER_KUBECONFIG)"'
