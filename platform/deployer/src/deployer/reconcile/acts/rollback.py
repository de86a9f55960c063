"""Act: ``helm rollback`` to a revision (0: the previous one), waiting for readiness."""

from __future__ import annotations

from deploy_contract.events import DeployPhase
from deployer.reconcile.context import Crew, Ending, Pass
from deployer.reconcile.decide import RollBack, description_for, marks_for
from deployer.reconcile.state import Outcome


async def act(crew: Crew, current: Pass, action: RollBack) -> Ending:
    """Roll the release back; the outcome carries the revision and image that serve after it.
    Step errors propagate (the loop decides retry or final)."""
    started = current.record.moved_to(DeployPhase.STARTED)
    await crew.reporter.record(started)
    await crew.ports.at(current.target.environment).apply.rollback(
        current.target.release,
        action.revision or None,
        timeout_seconds=crew.settings.helm_timeout_seconds,
        description=description_for(started),
        marks=marks_for(started),
    )
    after = await crew.observer.status(current.target)
    image = str(after.image) if after.image else None
    return Ending(
        started, Outcome(DeployPhase.SUCCEEDED, revision=after.revision or 0, image=image)
    )
