"""The reconcile loop: a lane hands it a deployment, and it passes over the release until the
deployment ends (or waits for a person): observe, decide, act.

Each pass observes the release once, lets :func:`deployer.reconcile.decide.decide` pick the next
action, and runs that action's act. A transient error starts a new pass (the one retry helper);
a final one ends the deployment ``failed`` (or ``rolled_back`` when Helm restored the release).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from deploy_contract.events import DeployPhase
from deployer.reconcile.acts import (
    Act,
    already_applied,
    canary,
    conclude,
    hold,
    recover,
    rollback,
    upgrade,
)
from deployer.reconcile.context import Crew, Ending, Pass
from deployer.reconcile.decide import (
    AlreadyApplied,
    Conclude,
    HoldForApproval,
    MakePlan,
    RecoverPending,
    RollBack,
    RunCanary,
    Upgrade,
    decide,
    gave_up_reason,
)
from deployer.reconcile.planner import Planner
from deployer.reconcile.retry import GaveUpError, retried
from deployer.reconcile.state import Outcome, failure_outcome
from deployer.records import DeploymentRecord
from kit.tracing import extract_trace_context, tracer

log = logging.getLogger(__name__)
ACTS: dict[type[Any], Act[Any]] = {
    RecoverPending: recover.act,
    AlreadyApplied: already_applied.act,
    Conclude: conclude.act,
    RollBack: rollback.act,
    HoldForApproval: hold.act,
    Upgrade: upgrade.act,
    RunCanary: canary.act,
}


class Reconciler:
    """Runs deployments to their outcome, one pass at a time."""

    def __init__(self, crew: Crew, planner: Planner, on_busy: Callable[[], None]) -> None:
        self._crew = crew
        self._planner = planner
        self._on_busy = on_busy

    async def run(self, record: DeploymentRecord) -> None:
        """Reconcile ``record``'s release until the deployment ends or waits (a lane's run)."""
        traced = {"traceparent": record.traceparent} if record.traceparent else {}
        with tracer().start_as_current_span(
            f"deploy {record.service}",
            context=extract_trace_context(traced),
            attributes={"deployment.id": record.id},
        ):
            self._on_busy()
            self._crew.outcomes.step(record.id, "lane")
            try:
                await self._to_the_end(record)
            finally:
                self._crew.outcomes.ran(record.id)
                self._on_busy()

    async def _to_the_end(self, record: DeploymentRecord) -> None:
        last_pass: list[Pass] = []  # for a failure's "before"
        try:
            ending = await retried(
                lambda: self._pass(record, last_pass),
                delay_seconds=self._crew.settings.retry_seconds,
                what="a step",
                context={"deployment_id": record.id},
            )
        except GaveUpError as gave_up:
            ending = Ending(record, await self._gave_up(record, last_pass, gave_up))
        except Exception as exc:  # a bug must end the deployment, not leave it queued forever
            log.exception("deployment stopped on an unexpected error", extra={"id": record.id})
            reason = f"the deployer stopped on an unexpected error: {exc}"
            ending = Ending(record, Outcome(DeployPhase.FAILED, reason))
        if ending.outcome is not None:
            await self._crew.outcomes.conclude(ending.record, ending.outcome)

    async def _pass(self, record: DeploymentRecord, passes: list[Pass]) -> Ending:
        """Observe, decide, act, until an act ends the pass; what was known of the release is
        settled once, at the end, whatever happened."""
        crew, target = self._crew, record.target
        ending: Ending | None = None
        passes.clear()  # a failed observation leaves no "before" from an earlier pass
        try:
            while ending is None:
                current = Pass(record, await crew.observer.observe(target))
                crew.outcomes.step(record.id, "observe")
                passes[:] = [current]
                action = decide(record, current.observed, None)
                if isinstance(action, MakePlan):
                    current.planned, current.values, current.rendered = await self._planner.plan(
                        record, current.observed, lambda name: crew.outcomes.step(record.id, name)
                    )
                    action = decide(record, current.observed, current.planned)
                ending = await ACTS[type(action)](crew, current, action)
            return ending
        finally:
            applied = ending.applied if ending is not None else None
            changed = ending.changed if ending is not None else True
            crew.observer.settle(target, applied, changed=changed)

    async def _gave_up(
        self, record: DeploymentRecord, passes: list[Pass], gave_up: GaveUpError
    ) -> Outcome:
        error = gave_up.error
        if error.retryable or error.stderr is None:
            return Outcome(DeployPhase.FAILED, gave_up_reason(error, gave_up.attempts))
        # A final helm error: whether Helm restored the release says rolled_back or failed.
        after = await self._crew.observer.status(record.target)
        before = passes[0].observed if passes else None
        return failure_outcome(before, after, str(error), error.stderr)
