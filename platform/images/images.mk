# make images / images-tools / images-base: the cluster's images built without a Docker engine
# (buildah on local debootstrap base images, see pipelines/README.md "Images without Docker").

.PHONY: images images-tools images-base

images-tools: ## Install buildah, runc, debootstrap, docker-registry and gcc when missing (apt)
	@platform/images/install-tools.sh

images-base: images-tools deps ## Build the local Debian and Python base images (once per machine)
	@$(BIN)/python -c 'from pipelines_cli.baseimages import ensure_base_images as e; b = e(); print(b.debian, b.debian_id); print(b.python, b.python_id)'

images: images-tools deps ## Build and push every service image, pause, nats and postgres to the cluster registry
	@reg="$${FLOTILLA_REGISTRY:-$$(cat .run/cluster/registry 2>/dev/null || true)}"; \
	if [ -z "$$reg" ]; then echo "error: no cluster registry: run make cluster-up first (it writes .run/cluster/registry), or set FLOTILLA_REGISTRY=127.0.0.1:PORT" >&2; exit 1; fi; \
	echo "==> images -> $$reg"; \
	$(BIN)/pipelines images --push-to "$$reg" $(IMAGES)
