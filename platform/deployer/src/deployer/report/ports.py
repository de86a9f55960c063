"""What reporting needs from the world: a place for records and a way to publish events."""

from __future__ import annotations

from typing import Protocol

from deployer.records import DeploymentRecord, ServiceState
from deployer.targets import Target
from kit.events import CloudEvent


class RecordStore(Protocol):
    """Durable deployment records and service states (NATS key-value in production)."""

    async def get(self, deployment_id: str) -> DeploymentRecord | None:
        """The record of ``deployment_id``, if known."""

    async def put(self, record: DeploymentRecord) -> None:
        """Save ``record``."""

    async def all(self) -> list[DeploymentRecord]:
        """Every known deployment, oldest first."""

    async def service(self, target: Target) -> ServiceState | None:
        """The last known state of ``target``."""

    async def put_service(self, state: ServiceState) -> None:
        """Save the state of a target."""


class Publisher(Protocol):
    """Publishes events (the JetStream event bus in production)."""

    async def publish(
        self, subject: str, event: CloudEvent, *, headers: dict[str, str] | None = None
    ) -> object:
        """Publish ``event`` on ``subject`` (what the bus answers is not used)."""
