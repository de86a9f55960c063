"""What the API and the dashboard show: each release as its store reports it with the
deployer's last outcome, and the deployment history."""

from __future__ import annotations

import asyncio

from pydantic import BaseModel, Field

from deploy_contract.drift import DriftReport
from deployer.drift.watch import DriftWatch
from deployer.queue.lanes import Lanes
from deployer.reconcile.ports import Ports
from deployer.records import DeploymentRecord, ServiceState
from deployer.report.ports import RecordStore
from deployer.targets import Target


class ServiceView(BaseModel):
    """A service's release as Helm reports it, with the deployer's last outcome."""

    service: str
    environment: str = Field(default="", description="Where the release lives")
    release_status: str | None
    revision: int | None
    image: str | None
    last: ServiceState | None
    running: str | None = Field(description="Id of the deployment running now, if any")
    drift: DriftReport | None = Field(default=None, description="The last drift check")


class ReleaseViews:
    """Read-only views over the releases, the records and the lanes."""

    def __init__(self, ports: Ports, store: RecordStore, lanes: Lanes, drift: DriftWatch) -> None:
        self._ports = ports
        self._store = store
        self._lanes = lanes
        self._drift = drift

    async def deployments(self) -> list[DeploymentRecord]:
        """Every known deployment, oldest first."""
        return await self._store.all()

    async def deployment(self, deployment_id: str) -> DeploymentRecord | None:
        """The deployment ``deployment_id``, if known."""
        return await self._store.get(deployment_id)

    async def releases(self, targets: list[Target]) -> list[ServiceView]:
        """Each target's release (asked of the release store now) with its last outcome."""
        reports = self._drift.reports()

        async def view(target: Target) -> ServiceView:
            status = await self._ports.at(target.environment).releases.status(target.release)
            image = (
                f"{status.image_repository}:{status.image_tag}"
                if status and status.image_repository and status.image_tag
                else None
            )
            running = self._lanes.running(target)
            return ServiceView(
                service=target.service,
                environment=target.environment,
                release_status=status.status if status else None,
                revision=status.revision if status else None,
                image=image,
                last=await self._store.service(target),
                running=running.id if running else None,
                drift=reports.get(target),
            )

        return list(await asyncio.gather(*(view(target) for target in targets)))
