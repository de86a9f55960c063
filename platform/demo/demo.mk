# `make demo`: the story of independent rollouts, end to end on the local control plane
# (platform/demo/README.md). Included by the root Makefile, which defines BIN (.venv/bin) and the
# deps and tools targets.

DEMO_ARGS ?=

.PHONY: demo

demo: deps tools ## Independent rollouts end to end on a local cluster (~1 min warm; DEMO_ARGS=--no-color)
	@$(BIN)/python platform/demo/demo.py $(DEMO_ARGS)
