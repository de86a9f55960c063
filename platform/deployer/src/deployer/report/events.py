"""Deploy events: every phase of a deployment saved, then published as ``deploy.<service>.*``.

Each event's id (the ``Nats-Msg-Id`` JetStream de-duplicates by, within the DEPLOY stream's
window) is derived from what it reports, never from a clock: a replica that publishes a
transition another replica (or itself before a restart) published already is stored once.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

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
_DIGEST_CHARS = 16
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


def digest(content: Any) -> str:
    """A short, stable digest of JSON-safe ``content`` (the same content, the same digest)."""
    text = json.dumps(content, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:_DIGEST_CHARS]


def deploy_event_id(
    record: DeploymentRecord, phase: DeployPhase, progress: RolloutProgress | None = None
) -> str:
    """The id of ``record``'s event for ``phase``: a transition by where it is in the history;
    a progress report by its content too (one event per state); a canary status by its content
    and its number among the canary's reports (a canary resumed after a pause is where it was
    before, and that is news)."""
    suffix = f"{phase.value}-{len(record.history)}"
    if progress is not None:
        suffix += f"-{digest(progress.model_dump(mode='json'))}"
    elif phase is DeployPhase.CANARY:
        status = record.canary.model_dump(mode="json") if record.canary else None
        suffix += f"-{record.canary_reports}-{digest(status)}"
    return f"{record.id}:{suffix}"


def drift_event_id(report: DriftReport) -> str:
    """The id of a drift report: its release, revision and drifted fields (a drift reported
    again, by another replica or after a restart, is one event); a correction is an act of its
    own, so its time counts too."""
    place = f"{report.environment}.{report.service}" if report.environment else report.service
    content: dict[str, Any] = {
        "revision": report.revision,
        "fields": [field.model_dump(mode="json") for field in report.fields],
        "corrected": report.corrected,
        "error": report.error,
    }
    if report.corrected:
        content["checked_at"] = report.checked_at.isoformat()
    return f"drift-{place}-{digest(content)}"


def promotion_event_id(data: PromotionEventData) -> str:
    """The id of a promotion event: the promotion (asked for when), its state and each gate's
    verdict and reason (not the times the gates were decided at, which every evaluation
    renews)."""
    content = {
        "created_at": data.created_at.isoformat() if data.created_at else None,
        "state": data.state.value,
        "reason": data.reason,
        "gates": [[gate.gate.value, gate.verdict.value, gate.reason] for gate in data.gates],
        "deployment_id": data.deployment_id,
    }
    return f"promotion-{data.promotion_id}-{digest(content)}"


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
        if superseded_by is not None:
            record = record.model_copy(update={"superseded_by": superseded_by})
        await self.store.put(record)
        await self.publish(record, record.phase)

    async def republish(self, record: DeploymentRecord) -> None:
        """Publish ``record``'s current phase event again, with the id it was first published
        with: a replica taking a deployment over publishes a transition its previous holder
        saved but may not have published; JetStream drops it when it had been."""
        await self.publish(record, record.phase)

    async def canary(self, record: DeploymentRecord) -> None:
        """Save ``record`` with its canary status, then publish a ``canary`` event: one per
        status reported, so the status saved last reported again (by a replica that took the
        canary over, or after a restart) is the same event."""
        saved = await self.store.get(record.id)
        reports = saved.canary_reports if saved is not None else 0
        if saved is None or saved.canary != record.canary:
            reports += 1
        record = record.model_copy(update={"canary_reports": reports})
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
        """Publish ``record``'s event for ``phase`` (each transition, progress state and canary
        status once, whoever publishes it)."""
        data = event_data(record, phase, progress, superseded_by or record.superseded_by)
        # CloudEvents' distributed-tracing extension carries the pipeline's trace context too.
        tracing = {"traceparent": record.traceparent} if record.traceparent else {}
        event = CloudEvent.new(
            deploy_event_type(phase),
            source=SOURCE,
            subject=record.service,
            data=data.model_dump(mode="json", exclude_none=True),
            id=deploy_event_id(record, phase, progress),
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
            id=drift_event_id(report),
        )
        await self._publisher.publish(drift_subject(report.service), event)

    async def promotion(self, data: PromotionEventData) -> None:
        """Publish a promotion as it stands as a ``deploy.<service>.promotion`` event."""
        event = CloudEvent.new(
            PROMOTION_TYPE,
            source=SOURCE,
            subject=data.service,
            data=data.model_dump(mode="json", exclude_none=True),
            id=promotion_event_id(data),
        )
        await self._publisher.publish(promotion_subject(data.service), event)
