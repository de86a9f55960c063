"""Admission: pipeline events, API deployments and rollbacks become queued deployments (or
rejected ones), recorded before they enter their lane; after a restart the unfinished ones go
back to their lanes."""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Collection, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from deploy_contract.events import ArtifactPublished, DeployPhase, service_from_subject
from deployer.intake.checks import Intake, RejectedError
from deployer.intake.events import request_of
from deployer.promotion.environments import Environments
from deployer.promotion.releases import Release
from deployer.queue.approvals import Approvals
from deployer.records import DeploymentRecord, Origin
from deployer.report.events import Reporter
from deployer.report.outcomes import Outcomes
from deployer.targets import Target
from kit.events import CloudEvent, Delivery
from kit.tracing import inject_trace_headers

log = logging.getLogger(__name__)
# How far back a take-over publishes outcomes again (a lease's time is far shorter).
JUST_FINISHED = timedelta(minutes=5)


@dataclass
class Admission:
    """Checks what arrives and queues it in the lane of its target (an environment and the
    service); CI's releases enter the first environment."""

    environments: Environments
    intakes: Mapping[str, Intake]
    submit: Callable[[DeploymentRecord], Awaitable[None]]
    approvals: Approvals
    reporter: Reporter
    outcomes: Outcomes
    # The release of a request entering the first environment (the promoter's).
    release_of: Callable[[ArtifactPublished], Awaitable[Release]] | None = None

    async def on_pipeline_event(self, event: CloudEvent, delivery: Delivery) -> None:
        """Accept (queued) or reject one pipeline event; the same event id is handled once."""
        self.outcomes.received(event.id)
        if await self.reporter.known(event.id):
            self.outcomes.ran(event.id)
            return
        self.outcomes.step(event.id, "dedup")
        traceparent = inject_trace_headers({}).get("traceparent")
        try:
            request = await self.check(request_of(event, delivery.subject))
            self.outcomes.step(event.id, "intake")
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

    @property
    def entry(self) -> str:
        """The environment CI's releases enter."""
        return self.environments.entry.name

    async def check(
        self, request: ArtifactPublished, environment: str | None = None
    ) -> ArtifactPublished:
        """``request`` when ``environment``'s intake (default: the entry's) accepts it against
        what serves there now; else RejectedError."""
        spec = self.environments.get(environment) if environment else self.environments.entry
        name = spec.name
        intake = self.intakes[name]
        intake.known(request.service)
        if not spec.runs(request.service):
            raise RejectedError(
                f"{name} does not run {request.service} (it runs {', '.join(spec.services or [])})"
            )
        state = await self.reporter.store.service(Target(name, request.service))
        return intake.check_request(request, state.image if state else None)

    async def enqueue(
        self,
        deployment_id: str,
        request: ArtifactPublished | None,
        origin: Origin,
        traceparent: str | None,
        rollback_to_revision: int | None = None,
        service: str | None = None,
        environment: str | None = None,
        release_id: str | None = None,
        promotion_id: str | None = None,
    ) -> DeploymentRecord:
        """Record a deployment as queued (durably) and hand it to its lane (in ``environment``,
        default: the entry, where a request is a new release)."""
        environment = environment or self.entry
        entering = environment == self.entry and request is not None
        if release_id is None and entering and self.release_of is not None:
            assert request is not None
            release_id = (await self.release_of(request)).id
            self.outcomes.step(deployment_id, "release")
        record = self._record(
            request.service if request else service or "",
            environment=environment,
            release_id=release_id,
            promotion_id=promotion_id,
            id=deployment_id,
            origin=origin,
            request=request,
            rollback_to_revision=rollback_to_revision,
            traceparent=traceparent,
        ).moved_to(DeployPhase.QUEUED)
        await self.reporter.record(record)
        await self.approvals.superseded_by(record)
        self.outcomes.step(deployment_id, "queued")
        await self.submit(record)
        return record

    async def promote(
        self,
        deployment_id: str,
        request: ArtifactPublished,
        environment: str,
        release_id: str,
        promotion_id: str,
    ) -> DeploymentRecord:
        """Queue a promotion's deployment of a release into ``environment``, checked by that
        environment's intake first (RejectedError)."""
        checked = await self.check(request, environment)
        return await self.enqueue(
            deployment_id, checked, Origin.PROMOTION, None, environment=environment,
            release_id=release_id, promotion_id=promotion_id,
        )  # fmt: skip

    async def enqueue_rollback(
        self, service: str, revision: int | None, environment: str | None = None
    ) -> DeploymentRecord:
        """Queue a rollback of ``service`` in ``environment`` (default: the entry) to
        ``revision`` (None: the previous one)."""
        name = self.environments.get(environment).name if environment else self.entry
        self.intakes[name].known(service)
        deployment_id = f"rollback-{name}-{service}-{int(time.time() * 1000)}"
        return await self.enqueue(
            deployment_id, None, Origin.API, None, rollback_to_revision=revision or 0,
            service=service, environment=name,
        )  # fmt: skip

    async def resume(self, targets: Collection[Target] | None = None) -> int:
        """After a restart or a take-over: every unfinished deployment (of ``targets``, when
        given) back in its lane, oldest first (one waiting for approval keeps waiting: helm never
        ran for it)."""
        records = await self.reporter.store.all()
        self.reporter.saw([record.id for record in records])
        unfinished = [
            r.model_copy(update={"environment": r.environment or self.entry})
            for r in records
            if not r.phase.terminal
        ]
        if targets is not None:
            unfinished = [r for r in unfinished if r.target in targets]
        # The last transition of each may have been recorded by a replica that died before it
        # published it: published again under the same id, it is stored once.
        for record in [*unfinished, *self._just_finished(records, targets)]:
            await self.reporter.republish(record)
        for record in unfinished:
            if record.phase is DeployPhase.PENDING_APPROVAL:
                await self.approvals.keep(record)
                continue
            await self.approvals.superseded_by(record)
            await self.submit(record)
        return len(unfinished)

    @staticmethod
    def _just_finished(
        records: list[DeploymentRecord], targets: Collection[Target] | None
    ) -> list[DeploymentRecord]:
        """Deployments that ended in the last few minutes (of ``targets``): a replica killed
        between recording an outcome and publishing it ended one of them."""
        since = datetime.now(UTC) - JUST_FINISHED
        return [
            r
            for r in records
            if r.phase.terminal
            and r.finished_at is not None
            and r.finished_at >= since
            and (targets is None or r.target in targets)
        ]

    def _record(self, service: str, **fields: object) -> DeploymentRecord:
        return DeploymentRecord.model_validate(
            {
                "service": service,
                "environment": self.entry,
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
