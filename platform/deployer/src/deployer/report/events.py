"""Deploy events: every phase of a deployment saved, then published as ``deploy.<service>.*``."""

from __future__ import annotations

import time

from deploy_contract.drift import DriftReport, report_json
from deploy_contract.events import (
    DRIFTED_TYPE,
    DeployEventData,
    DeployPhase,
    RolloutProgress,
    deploy_event_type,
    deploy_subject,
    drift_subject,
)
from deploy_contract.promotions import PROMOTION_TYPE, PromotionEventData, promotion_subject
from deployer.records import DeploymentRecord
from deployer.report.ports import Publisher, RecordStore
from kit.events import CloudEvent

SOURCE = "/platform/deployer"
_PLAN_PHASES = frozenset({DeployPhase.STARTED, DeployPhase.PENDING_APPROVAL, DeployPhase.UNCHANGED})
_STDERR_PHASES = frozenset({DeployPhase.FAILED, DeployPhase.ROLLED_BACK})


def event_data(
    record: DeploymentRecord,
    phase: DeployPhase,
    progress: RolloutProgress | None = None,
    superseded_by: str | None = None,
) -> DeployEventData:
    """The data of ``record``'s event for ``phase`` (the plan, stderr and canary where they
    belong)."""
    request = record.request
    return DeployEventData(
        deployment_id=record.id,
        service=record.service,
        environment=record.environment or None,
        release_id=record.release_id,
        promotion_id=record.promotion_id,
        phase=phase,
        image=request.image if request else None,
        commit=request.commit if request else None,
        pipeline_id=request.pipeline_id if request else None,
        reason=record.reason,
        revision=record.revision,
        plan=record.plan if phase in _PLAN_PHASES else None,
        progress=progress,
        superseded_by=superseded_by,
        helm_stderr=record.helm_stderr if phase in _STDERR_PHASES else None,
        pod_problems=record.pod_problems or None if phase in _STDERR_PHASES else None,
        approvals_needed=record.approvals_needed or None,
        approved_by=record.approved_by,
        canary=record.canary if phase is DeployPhase.CANARY or phase.terminal else None,
    )


class Reporter:
    """Saves deployment records and publishes their events (the store is the truth, events
    follow); remembers the ids it saw, so an event is handled once."""

    def __init__(self, store: RecordStore, publisher: Publisher) -> None:
        self.store = store
        self._publisher = publisher
        self._seen: set[str] = set()

    async def known(self, deployment_id: str) -> bool:
        """True for a deployment id this deployer has recorded (now or before a restart)."""
        if deployment_id in self._seen:
            return True
        return await self.store.get(deployment_id) is not None

    def saw(self, deployment_ids: list[str]) -> None:
        """Remember ids recorded before a restart."""
        self._seen.update(deployment_ids)

    async def record(self, record: DeploymentRecord, superseded_by: str | None = None) -> None:
        """Save ``record``, then publish its phase."""
        self._seen.add(record.id)
        await self.store.put(record)
        await self.publish(record, record.phase, superseded_by=superseded_by)

    async def canary(self, record: DeploymentRecord) -> None:
        """Save ``record`` with its canary status, then publish a ``canary`` event."""
        await self.store.put(record)
        await self.publish(record, DeployPhase.CANARY)

    async def publish(
        self,
        record: DeploymentRecord,
        phase: DeployPhase,
        *,
        progress: RolloutProgress | None = None,
        superseded_by: str | None = None,
    ) -> None:
        """Publish ``record``'s event for ``phase`` (progress and canary events each once)."""
        data = event_data(record, phase, progress, superseded_by)
        suffix = f"{phase.value}-{len(record.history)}"
        if progress is not None or phase is DeployPhase.CANARY:
            suffix = f"{phase.value}-{time.monotonic_ns()}"
        # CloudEvents' distributed-tracing extension carries the pipeline's trace context too.
        tracing = {"traceparent": record.traceparent} if record.traceparent else {}
        event = CloudEvent.new(
            deploy_event_type(phase),
            source=SOURCE,
            subject=record.service,
            data=data.model_dump(mode="json", exclude_none=True),
            id=f"{record.id}:{suffix}",
            **tracing,
        )
        subject = deploy_subject(record.service, phase)
        await self._publisher.publish(subject, event, headers=dict(tracing) or None)

    async def drift(self, report: DriftReport) -> None:
        """Publish a drift report as a ``deploy.<service>.drifted`` event."""
        event = CloudEvent.new(
            DRIFTED_TYPE,
            source=SOURCE,
            subject=report.service,
            data=report_json(report),
            id=f"drift-{report.service}-{time.time_ns()}",
        )
        await self._publisher.publish(drift_subject(report.service), event)

    async def promotion(self, data: PromotionEventData) -> None:
        """Publish a promotion as it stands as a ``deploy.<service>.promotion`` event."""
        event = CloudEvent.new(
            PROMOTION_TYPE,
            source=SOURCE,
            subject=data.service,
            data=data.model_dump(mode="json", exclude_none=True),
            id=f"promotion-{data.promotion_id}-{time.time_ns()}",
        )
        await self._publisher.publish(promotion_subject(data.service), event)
