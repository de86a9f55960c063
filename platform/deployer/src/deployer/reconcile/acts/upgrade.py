"""Act: ``helm upgrade --install`` with the planned values (a rolling update); a failed rollout
is rolled back by helm (``--rollback-on-failure``) and ends ``rolled_back`` or ``failed``."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from deploy_contract.events import DeployPhase, RolloutProgress
from deploy_contract.images import parse_image
from deployer.reconcile.acts.started import report_started
from deployer.reconcile.context import Crew, Ending, Pass
from deployer.reconcile.decide import Upgrade, description_for, marks_for
from deployer.reconcile.errors import StepError
from deployer.reconcile.ports import ApplyRequest
from deployer.reconcile.state import Observation, Outcome, failure_outcome
from deployer.reconcile.watch import PodWatch
from deployer.records import DeploymentRecord
from deployer.report.metrics import DEPLOY_DURATION


async def upgrade(
    crew: Crew,
    record: DeploymentRecord,
    values: dict[str, Any],
    observed: Observation,
    watch: PodWatch,
    *,
    on_start: Callable[[float], None] | None = None,
    description: str | None = None,
) -> Outcome:
    """Apply ``values`` to ``record``'s release, watching its new pods; ``observed`` is the
    release before (to tell a rollback happened), ``description`` the release description
    (default: the deployment's). Raises a retryable StepError (the caller retries)."""
    target = record.target

    def started(at: float) -> None:
        if on_start is not None:
            on_start(at)
        watch.start()

    async with watch.running():
        try:
            request = ApplyRequest(
                release=target.release,
                chart=crew.charts[target.service],
                values=values,
                description=description or description_for(record),
                timeout_seconds=crew.settings.helm_timeout_seconds,
                history_max=crew.settings.history_max,
                on_start=started,
                stop=watch.give_up,
                marks=marks_for(record),
            )
            applied = await crew.ports.at(target.environment).apply.apply(request)
        except StepError as exc:
            if exc.retryable:
                raise
            after = await crew.observer.status(target)
            return watch.judged(failure_outcome(observed, after, str(exc), exc.stderr))
    revision = applied.revision or (observed.revision or 0) + 1
    return Outcome(DeployPhase.SUCCEEDED, revision=revision)


def applied_by(record: DeploymentRecord, outcome: Outcome, rendered: str) -> Observation | None:
    """What the release is after ``record`` succeeded with ``outcome`` (None when it did not)."""
    if outcome.phase is not DeployPhase.SUCCEEDED or record.request is None:
        return None
    return Observation(
        status="deployed",
        revision=outcome.revision,
        description=description_for(record),
        image=parse_image(record.request.image),
        manifest=rendered,
    )


async def act(crew: Crew, current: Pass, action: Upgrade) -> Ending:
    """A rolling update, its progress published as it goes."""
    started = await report_started(crew, current)
    crew.outcomes.step(started.id, "started")

    async def progressed(progress: RolloutProgress) -> None:
        await crew.reporter.publish(started, DeployPhase.PROGRESSING, progress=progress)

    place = crew.ports.at(current.target.environment)
    watch = PodWatch(
        place.rollouts,
        current.target.release,
        # Flux, not the deployer, decides when a gitops rollout has failed (its timeout).
        crew.settings.fail_fast_restarts if place.mode == "push" else 0,
        on_progress=progressed,
        deployment_id=started.id,
    )
    began = time.monotonic()
    try:
        outcome = await upgrade(
            crew,
            started,
            current.values,
            current.observed,
            watch,
            on_start=lambda at: crew.outcomes.helm_started(started.id, at),
        )
    finally:
        DEPLOY_DURATION.labels(started.service).observe(time.monotonic() - began)
    return Ending(started, outcome, applied_by(started, outcome, current.rendered))
