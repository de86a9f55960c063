"""Outcomes: the one terminal phase of each deployment, recorded with the service's state, its
metrics and its timings."""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

from deploy_contract.events import DeployPhase
from deployer.reconcile.state import Outcome
from deployer.records import DeploymentRecord, ServiceState
from deployer.report.events import Reporter
from deployer.report.metrics import DEPLOYMENTS, EVENT_TO_START
from deployer.report.pathtimes import PathTimes

log = logging.getLogger(__name__)


class Outcomes:
    """Ends deployments: records the outcome, the service's state after it, and the metrics."""

    def __init__(self, reporter: Reporter) -> None:
        self._reporter = reporter
        # Each deployment's way from its event to helm, and when its helm started (wall clock)
        # with the milliseconds of each step on the way.
        self.path = PathTimes()
        self._helm_started: dict[str, tuple[datetime, dict[str, float] | None]] = {}
        # Told of every deployment that ended (the promoter); they must not wait.
        self.listeners: list[Callable[[DeploymentRecord], Awaitable[None]]] = []

    def received(self, deployment_id: str) -> None:
        """A deployment arrived now (its event-to-helm time counts from here)."""
        self.path.begin(deployment_id)

    def step(self, deployment_id: str, name: str) -> None:
        """The step ``name`` on the deployment's way to helm ended now."""
        self.path.step(deployment_id, name)

    def helm_started(self, deployment_id: str, at: float) -> None:
        """Helm started for the deployment at the monotonic time ``at``."""
        received = self.path.arrived(deployment_id)
        if received is not None:
            EVENT_TO_START.observe(at - received)
        steps = self.path.finish(deployment_id, at)
        if steps is None and deployment_id in self._helm_started:  # helm again (a retry)
            steps = self._helm_started[deployment_id][1]
        wall = time.time() - (time.monotonic() - at)
        self._helm_started[deployment_id] = (datetime.fromtimestamp(wall, UTC), steps)

    def ran(self, deployment_id: str) -> None:
        """The deployment's run in its lane is over (whatever it did)."""
        self.path.drop(deployment_id)

    async def service(self, record: DeploymentRecord) -> ServiceState | None:
        """The last known state of ``record``'s target."""
        return await self._reporter.store.service(record.target)

    async def conclude(self, record: DeploymentRecord, outcome: Outcome) -> None:
        """Record and report the one outcome of a deployment."""
        if outcome.superseded_by is not None:
            await self.supersede(record, outcome.superseded_by, outcome.reason)
            return
        ended = record.model_copy(
            update={
                "helm_stderr": outcome.helm_stderr or record.helm_stderr,
                "revision": outcome.revision or record.revision,
                "pod_problems": list(outcome.pod_problems) or record.pod_problems,
            }
        )
        final = ended.moved_to(outcome.phase, outcome.reason)
        helm_started = self._helm_started.pop(record.id, None)
        if helm_started is not None:
            at, steps = helm_started
            final = final.model_copy(update={"helm_started_at": at, "to_helm_ms": steps})
        DEPLOYMENTS.labels(record.service, outcome.phase.value).inc()
        await self._reporter.record(final)
        await self._tell(final)
        if outcome.phase is DeployPhase.SUCCEEDED:
            image = final.image or outcome.image
            await self._save(final, image, outcome.revision or 0)
        elif outcome.phase in (DeployPhase.FAILED, DeployPhase.ROLLED_BACK):
            # What serves is still the image before (the older-image rule keeps comparing with
            # it), at the revision helm restored.
            before = await self.service(final)
            rolled_back = outcome.phase is DeployPhase.ROLLED_BACK
            kept = before.revision if before else None
            await self._save(
                final, before.image if before else None, final.revision if rolled_back else kept
            )

    async def _save(
        self, record: DeploymentRecord, image: str | None, revision: int | None
    ) -> None:
        state = ServiceState(
            service=record.service,
            environment=record.environment,
            image=image,
            revision=revision,
            phase=record.phase,
            deployment_id=record.id,
            updated_at=datetime.now(UTC),
        )
        await self._reporter.store.put_service(state)

    async def supersede(self, old: DeploymentRecord, newer: str, reason: str | None = None) -> None:
        """``old`` ends superseded by the deployment ``newer``."""
        superseded = old.moved_to(DeployPhase.SUPERSEDED, reason or f"superseded by {newer}")
        DEPLOYMENTS.labels(old.service, DeployPhase.SUPERSEDED.value).inc()
        await self._reporter.record(superseded, superseded_by=newer)
        await self._tell(superseded)

    async def superseded(self, old: DeploymentRecord, new: DeploymentRecord) -> None:
        """A waiting ``old`` gave way to ``new`` in its lane."""
        await self.supersede(old, new.id)

    async def reject(self, record: DeploymentRecord, reason: str) -> DeploymentRecord:
        """``record`` ends rejected (at intake, or denied by a person); the record as ended."""
        rejected = record.moved_to(DeployPhase.REJECTED, reason)
        DEPLOYMENTS.labels(record.service, DeployPhase.REJECTED.value).inc()
        await self._reporter.record(rejected)
        await self._tell(rejected)
        return rejected

    async def _tell(self, ended: DeploymentRecord) -> None:
        for listener in self.listeners:
            try:
                await listener(ended)
            except Exception:  # a listener's trouble never changes an outcome
                log.exception("an outcome listener failed", extra={"id": ended.id})
