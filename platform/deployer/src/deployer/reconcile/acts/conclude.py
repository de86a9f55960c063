"""Act: end a deployment without touching the release (an older image refused, or a plan that
changes nothing skipped); no helm runs and no revision is added."""

from __future__ import annotations

from deployer.reconcile.context import Crew, Ending, Pass
from deployer.reconcile.decide import Conclude
from deployer.reconcile.state import Outcome


async def act(crew: Crew, current: Pass, action: Conclude) -> Ending:
    """It ends in the action's phase with its reason (and the plan, when the pass made one)."""
    record = current.with_plan() if current.planned is not None else current.record
    return Ending(record, Outcome(action.phase, action.reason), changed=False)
