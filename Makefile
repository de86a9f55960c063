# Flotilla: the two commands are `make run` (or `make demo`) and `make test`.
# Everything below installs what it needs; tools are cached outside the checkout.

SHELL := bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help

export FLOTILLA_CACHE ?= $(HOME)/.cache/flotilla
PYTHON ?= python3
UV_VERSION := 0.13.8
UV := $(FLOTILLA_CACHE)/uv-$(UV_VERSION)/bin/uv
VENV := .venv
BIN := $(VENV)/bin
# Never let uv fetch a Python of its own: registries only, and the machine has 3.11.
export UV_PYTHON_DOWNLOADS := never
PYTEST_ARGS ?=
# pytest-xdist workers for make test: they share the tests a module (or a package's shared
# fixtures) at a time; one of them takes every test that needs the real node, last, in order.
TEST_WORKERS ?= 2
RUN_ARGS ?=
BENCH_ARGS ?=
LOAD_ARGS ?=

.PHONY: help setup deps helm postgres prometheus tools charts-vendor test lint fmt run env bench load clean clean-cache

help: ## List the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-15s %s\n", $$1, $$2}'

$(UV):
	@echo "==> installing uv $(UV_VERSION) into $(FLOTILLA_CACHE) (one time)"
	@$(PYTHON) -m venv $(FLOTILLA_CACHE)/uv-$(UV_VERSION)
	@$(FLOTILLA_CACHE)/uv-$(UV_VERSION)/bin/pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)

deps: $(UV) ## Create .venv and install the locked dependencies of every workspace member
	@$(UV) sync --all-packages --locked --python $(PYTHON) --quiet

helm: ## Build the pinned helm from its Go module (cached by version)
	@platform/cluster/build-tools.sh helm

SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
postgres: ## PostgreSQL server binaries for the tests (Debian's postgresql package)
	@if ! ls /usr/lib/postgresql/*/bin/pg_ctl >/dev/null 2>&1; then \
	  echo "==> installing PostgreSQL (Debian package, one time)"; \
	  $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq postgresql >/dev/null; \
	fi

setup: deps tools postgres ## Install everything the project needs (idempotent)
	@echo "==> setup done: $(BIN) (nats-server $$($(BIN)/nats-server --version | awk '{print $$2}'))"

tools: ## Build helm, the local cluster (control plane, real node), the Flux controllers and the CI linters; Debian packages for images, the node, the browser test and Prometheus
	@platform/cluster/build-tools.sh
	@platform/cluster/node-deps.sh
	@platform/images/install-tools.sh
	@pipelines/tools.sh
	@platform/deployer/browser-deps.sh
	@platform/monitoring/install-prometheus.sh

prometheus: ## Debian's prometheus, for the canary analysis (make demo and the tests)
	@platform/monitoring/install-prometheus.sh

lint: setup ## ruff check, ruff format --check, mypy --strict
	@echo "==> ruff check"; $(BIN)/ruff check .
	@echo "==> ruff format --check"; $(BIN)/ruff format --check .
	@echo "==> mypy (strict)"; $(BIN)/mypy platform services tests pipelines conftest.py charts/schemagen

fmt: setup ## Format and auto-fix
	@$(BIN)/ruff check --fix . && $(BIN)/ruff format .

test: lint ## Lint, type-check, then every test suite
	@echo "==> pytest ($(TEST_WORKERS) workers)"; $(BIN)/pytest -n $(TEST_WORKERS) $(PYTEST_ARGS)

run: deps ## NATS and every service as local processes (Ctrl-C stops them); installs only uv and the venv
	@$(BIN)/python -m devkit.devrun $(RUN_ARGS)

env: ## Shell exports for the project's tools: eval "$$(make -s env)"
	@echo 'export PATH="$(CURDIR)/$(BIN)'"$$(platform/cluster/tool-paths.sh --dirs 2>/dev/null | sed 's/^/:/' | tr -d '\n')"':$$PATH"'
	@echo 'export FLOTILLA_CACHE="$(FLOTILLA_CACHE)"'
	@echo 'export KUBECONFIG="$(CURDIR)/.run/cluster/kubeconfig"  # make cluster-up'

bench: setup ## Benchmarks (not part of make test): writes docs/benchmarks.md
	@$(BIN)/python -m tests.bench $(BENCH_ARGS)

load: deps ## Steady traffic through the gateway (default make run's :8000), every outcome counted
	@$(BIN)/python -m loadgen $(LOAD_ARGS)

charts-vendor: ## Re-vendor the library chart into every application chart (after editing it)
	@charts/vendor-lib.sh

clean: ## Remove the virtualenv, run state and caches in the checkout (not the tool cache)
	-@platform/cluster/cluster.sh down --run-dir $(CURDIR)/.run/cluster 2>/dev/null
	rm -rf $(VENV) .run data .mypy_cache .ruff_cache .pytest_cache
	find . -name __pycache__ -type d -prune -exec rm -rf {} +

clean-cache: ## Remove the tool cache outside the checkout ($(FLOTILLA_CACHE))
	rm -rf $(FLOTILLA_CACHE)

# make cluster-up / cluster-down (the local Kubernetes control plane), make demo, make new-service
-include platform/cluster/cluster.mk
-include platform/demo/demo.mk
-include platform/scaffold/scaffold.mk
-include platform/images/images.mk
-include platform/secrets/secrets.mk
