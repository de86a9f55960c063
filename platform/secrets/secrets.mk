# The platform's Kubernetes Secrets; included by the root Makefile (which defines BIN, .venv/bin,
# and, through platform/cluster/cluster.mk, CLUSTER_KUBECONFIG). See platform/secrets/README.md.

SECRETS_KUBECONFIG ?= $(CLUSTER_KUBECONFIG)

.PHONY: cluster-secrets

cluster-secrets: ## Create the platform's Secrets in the cluster once, random values, never rotated (SECRETS_KUBECONFIG=<path>)
	@$(BIN)/python platform/secrets/cluster_secrets.py --kubeconfig "$(SECRETS_KUBECONFIG)"
