"""Approvals: deployments held in their lane until a person approves or denies them.

Helm has not run for a held deployment; a newer deployment of the same target supersedes it.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from deploy_contract.events import DeployPhase
from deployer.records import DeploymentRecord
from deployer.report.events import Reporter
from deployer.report.outcomes import Outcomes
from deployer.targets import Target

log = logging.getLogger(__name__)


class NotPendingError(LookupError):
    """An approval for a deployment that does not wait for one; the message says why."""


class Approvals:
    """The deployment waiting for approval, per target (the newest only)."""

    def __init__(
        self,
        reporter: Reporter,
        outcomes: Outcomes,
        submit: Callable[[DeploymentRecord], Awaitable[None]],
    ) -> None:
        self._reporter = reporter
        self._outcomes = outcomes
        self._submit = submit
        self._waiting: dict[Target, DeploymentRecord] = {}

    def pending(self, deployment_id: str) -> DeploymentRecord | None:
        """The deployment ``deployment_id`` if it waits for approval."""
        return next((r for r in self._waiting.values() if r.id == deployment_id), None)

    async def hold(self, record: DeploymentRecord, needed: list[str]) -> DeploymentRecord:
        """Hold ``record`` (planned already) until approved; an older held one is superseded."""
        held = record.model_copy(update={"approvals_needed": needed}).moved_to(
            DeployPhase.PENDING_APPROVAL, "waiting for approval: " + "; ".join(needed)
        )
        log.info("deployment waits for approval", extra={"deployment_id": record.id})
        await self.keep(held, report=True)
        return held

    async def keep(self, record: DeploymentRecord, *, report: bool = False) -> None:
        """Keep ``record`` waiting (after a restart, or held now with ``report``)."""
        older = self._waiting.get(record.target)
        self._waiting[record.target] = record
        if report:
            await self._reporter.record(record)
        if older is not None and older.id != record.id:
            await self._outcomes.supersede(older, record.id)

    async def superseded_by(self, newer: DeploymentRecord) -> None:
        """A newer deployment of the same target arrived: the held one is superseded."""
        waiting = self._waiting.pop(newer.target, None)
        if waiting is not None:
            await self._outcomes.supersede(waiting, newer.id)

    async def approve(self, deployment_id: str, by: str) -> DeploymentRecord:
        """Queue a held deployment; it runs once, without asking again."""
        record = await self._take(deployment_id)
        approved = record.model_copy(update={"approved_by": by}).moved_to(
            DeployPhase.QUEUED, f"approved by {by}"
        )
        await self._reporter.record(approved)
        await self._submit(approved)
        return approved

    async def deny(self, deployment_id: str, by: str) -> DeploymentRecord:
        """End a held deployment as rejected."""
        record = await self._take(deployment_id)
        return await self._outcomes.reject(record, f"denied by {by}")

    async def _take(self, deployment_id: str) -> DeploymentRecord:
        record = self.pending(deployment_id)
        if record is not None:
            del self._waiting[record.target]
            return record
        stored = await self._reporter.store.get(deployment_id)
        if stored is None:
            raise NotPendingError(f"no deployment {deployment_id}")
        raise NotPendingError(
            f"deployment {deployment_id} is {stored.phase.value}, not pending_approval: "
            "there is nothing to approve"
        )
