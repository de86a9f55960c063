"""A target: where one release lives, an environment and a service. Lanes, records, service state
and events are keyed by it; today a deployer serves one environment."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, order=True)
class Target:
    """One release: ``service`` in ``environment``."""

    environment: str
    service: str

    @property
    def release(self) -> str:
        """The Helm release's name (the service's; the environment is where it is installed)."""
        return self.service

    def __str__(self) -> str:
        return f"{self.environment}/{self.service}"
