"""Adapters: the deployer's ports implemented over real systems (helm, NATS, Kubernetes,
Prometheus)."""
