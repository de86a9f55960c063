"""The local stack: what `make run`, the demo and the test stacks share to run the platform's
processes on this machine (ports nobody else takes, the tools, NATS, service processes and the
environment each service reads)."""
