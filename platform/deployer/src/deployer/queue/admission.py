"""Admission: pipeline events, API deployments and rollbacks become queued deployments (or
rejected ones), recorded before they enter their lane; after a restart the unfinished ones go
back to their lanes."""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from deploy_contract.events import ArtifactPublished, DeployPhase, service_from_subject
from deployer.intake.checks import Intake, RejectedError
from deployer.intake.events import request_of
from deployer.queue.approvals import Approvals
from deployer.records import DeploymentRecord, Origin
from deployer.report.events import Reporter
from deployer.report.outcomes import Outcomes
from deployer.targets import Target
from kit.events import CloudEvent, Delivery
from kit.tracing import inject_trace_headers

log = logging.getLogger(__name__)


@dataclass
class Admission:
    """Checks what arrives and queues it in the lane of its target (this deployer's environment
    and the service)."""

    environment: str
    intake: Intake
    submit: Callable[[DeploymentRecord], Awaitable[None]]
    approvals: Approvals
    reporter: Reporter
    outcomes: Outcomes

    async def on_pipeline_event(self, event: CloudEvent, delivery: Delivery) -> None:
        """Accept (queued) or reject one pipeline event; the same event id is handled once."""
        if await self.reporter.known(event.id):
            return
        self.outcomes.received(event.id)
        traceparent = inject_trace_headers({}).get("traceparent")
        try:
            request = await self.check(request_of(event, delivery.subject))
        except RejectedError as exc:
            service = service_from_subject(delivery.subject) or "unknown"
            await self._reject(event.id, service, str(exc), traceparent)
            return
        await self.enqueue(event.id, request, Origin.PIPELINE, traceparent)

    async def on_invalid_event(self, raw: bytes, error: str, delivery: Delivery) -> None:
        """A message that is not a CloudEvent: reject it with the parse error."""
        deployment_id = f"invalid-{delivery.subject}-{delivery.stream_sequence}"
        if await self.reporter.known(deployment_id):
            return
        service = service_from_subject(delivery.subject) or "unknown"
        await self._reject(deployment_id, service, f"malformed event: {error}", None)

    async def check(self, request: ArtifactPublished) -> ArtifactPublished:
        """``request`` when the intake accepts it (against what serves now); else
        RejectedError."""
        self.intake.known(request.service)
        state = await self.reporter.store.service(Target(self.environment, request.service))
        return self.intake.check_request(request, state.image if state else None)

    async def enqueue(
        self,
        deployment_id: str,
        request: ArtifactPublished | None,
        origin: Origin,
        traceparent: str | None,
        rollback_to_revision: int | None = None,
        service: str | None = None,
    ) -> DeploymentRecord:
        """Record a deployment as queued (durably) and hand it to its lane."""
        record = self._record(
            request.service if request else service or "",
            id=deployment_id,
            origin=origin,
            request=request,
            rollback_to_revision=rollback_to_revision,
            traceparent=traceparent,
        ).moved_to(DeployPhase.QUEUED)
        await self.reporter.record(record)
        await self.approvals.superseded_by(record)
        await self.submit(record)
        return record

    async def enqueue_rollback(self, service: str, revision: int | None) -> DeploymentRecord:
        """Queue a rollback of ``service`` to ``revision`` (None: the previous one)."""
        self.intake.known(service)
        deployment_id = f"rollback-{service}-{int(time.time() * 1000)}"
        return await self.enqueue(
            deployment_id, None, Origin.API, None, rollback_to_revision=revision or 0,
            service=service,
        )  # fmt: skip

    async def resume(self) -> int:
        """After a restart: every unfinished deployment back in its lane, oldest first (one
        waiting for approval keeps waiting: helm never ran for it)."""
        records = await self.reporter.store.all()
        self.reporter.saw([record.id for record in records])
        unfinished = [
            r.model_copy(update={"environment": r.environment or self.environment})
            for r in records
            if not r.phase.terminal
        ]
        for record in unfinished:
            if record.phase is DeployPhase.PENDING_APPROVAL:
                await self.approvals.keep(record)
                continue
            await self.approvals.superseded_by(record)
            await self.submit(record)
        return len(unfinished)

    def _record(self, service: str, **fields: object) -> DeploymentRecord:
        return DeploymentRecord.model_validate(
            {
                "service": service,
                "environment": self.environment,
                "phase": DeployPhase.QUEUED,
                "received_at": datetime.now(UTC),
                **fields,
            }
        )

    async def _reject(
        self, deployment_id: str, service: str, reason: str, traceparent: str | None
    ) -> None:
        record = self._record(service, id=deployment_id, traceparent=traceparent)
        log.warning(
            "rejected a pipeline event", extra={"deployment_id": deployment_id, "reason": reason}
        )
        self.outcomes.ran(deployment_id)
        await self.outcomes.reject(record, reason)
