"""The deploy orchestrator: pipeline events in, one Helm release per service out."""
