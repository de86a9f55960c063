# Local Kubernetes control plane targets; included by the root Makefile, which defines
# FLOTILLA_CACHE (the tool cache) and BIN (.venv/bin). See platform/cluster/README.md.

CLUSTER_SH := platform/cluster/cluster.sh
# The `make cluster-up` cluster: its kwok state and its kubeconfig live in the checkout.
CLUSTER_RUN_DIR := $(CURDIR)/.run/cluster
CLUSTER_KUBECONFIG := $(CLUSTER_RUN_DIR)/kubeconfig
CLUSTER_NODES ?= 2

.PHONY: cluster-tools cluster-up cluster-down cluster-status cluster-env

cluster-tools: ## Build kube-apiserver/controller-manager/scheduler, kubectl, etcd, kwok and helm (cached; ~10 min cold)
	@platform/cluster/build-tools.sh

cluster-up: cluster-tools ## Start the local control plane (kwok, 127.0.0.1) unless it is up; kubeconfig in .run/cluster
	@$(CLUSTER_SH) up --run-dir $(CLUSTER_RUN_DIR) --nodes $(CLUSTER_NODES)

cluster-down: ## Stop the local control plane and delete its state
	@$(CLUSTER_SH) down --run-dir $(CLUSTER_RUN_DIR)

cluster-status: ## Say whether the local control plane is up
	@$(CLUSTER_SH) status --run-dir $(CLUSTER_RUN_DIR)

cluster-env: ## The KUBECONFIG export of the local control plane (part of `make env`)
	@echo 'export KUBECONFIG="$(CLUSTER_KUBECONFIG)"'
