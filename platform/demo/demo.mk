# `make demo`: the story of independent rollouts, end to end on the local control plane
# (platform/demo/README.md). Included by the root Makefile, which defines BIN (.venv/bin) and deps;
# cluster-tools (platform/cluster/cluster.mk) builds helm and the control plane once, then is cached.

DEMO_ARGS ?=

.PHONY: demo

demo: deps cluster-tools images-tools prometheus ## Independent rollouts of real pods end to end on a local cluster (~4 min warm; DEMO_ARGS=--no-color)
	@$(BIN)/python platform/demo/demo.py $(DEMO_ARGS)
