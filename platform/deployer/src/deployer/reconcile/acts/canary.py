"""Act: move the release to the new image through the service's canary steps (see
:mod:`deployer.canary.run`); a newer deployment, a person or a failed analysis ends it early."""

from __future__ import annotations

from dataclasses import replace

from deploy_contract.events import CanaryStatus
from deploy_contract.images import parse_image
from deployer.canary.control import CanaryControl
from deployer.canary.host import ReleaseCanaryHost
from deployer.canary.replicas import Bounds, Split
from deployer.canary.run import CanaryPlan, CanaryRun
from deployer.reconcile.acts.started import report_started
from deployer.reconcile.acts.upgrade import applied_by
from deployer.reconcile.context import Crew, Ending, Pass
from deployer.reconcile.decide import RunCanary


async def canary_plan(crew: Crew, current: Pass, action: RunCanary) -> CanaryPlan:
    """Where the canary starts: the stable release's values and its split (a canary cut short
    by a restart of the deployer starts again from the split it left)."""
    record = current.record
    assert record.request is not None
    releases = crew.ports.at(record.environment).releases
    stable_values = await releases.get_values(record.target.release) or {}
    live = stable_values.pop("canary", None) or {}
    merged = crew.intakes[record.environment].merged(record.service, stable_values)
    replicas = int(merged.get("replicaCount", 1))
    rolling = merged.get("rollingUpdate") or {}
    bounds = Bounds.of(replicas, rolling.get("maxSurge", 1), rolling.get("maxUnavailable", 0))
    start = (
        Split(int(live.get("stableReplicas", replicas)), int(live.get("replicas", 0)))
        if live.get("enabled")
        else Split(replicas, 0)
    )
    observed = current.observed
    return CanaryPlan(
        strategy=action.strategy,
        stable_values=stable_values,
        new_values=current.values,
        image=parse_image(record.request.image),
        stable_image=str(observed.image) if observed.image else None,
        bounds=bounds,
        start=start,
        deployment_id=record.id,
        service=record.service,
        resumed=record.canary,
    )


async def act(crew: Crew, current: Pass, action: RunCanary) -> Ending:
    """Run the canary to its end: promoted (succeeded), aborted (rolled back) or superseded."""
    started = await report_started(crew, current, f"canary: {action.strategy.describe()}; ")
    plan = await canary_plan(crew, replace(current, record=started), action)
    latest = started

    async def publish(status: CanaryStatus) -> None:
        nonlocal latest
        latest = latest.model_copy(update={"canary": status})
        await crew.reporter.canary(latest)

    def newer() -> str | None:
        queued = crew.queued(current.target)
        return queued.id if queued is not None else None

    host = ReleaseCanaryHost(crew, started, publish, newer)
    run = CanaryRun(plan, host, CanaryControl())
    crew.canaries.started(started.id, run)
    try:
        result = await run.run()
    finally:
        crew.canaries.ended(started.id)
    ended = latest.model_copy(update={"canary": result.status})
    outcome = replace(result.outcome, superseded_by=result.superseded_by)
    return Ending(ended, outcome, applied_by(started, outcome, current.rendered))
