"""Act: hold a planned deployment for a person's approval (helm does not run)."""

from __future__ import annotations

from deployer.reconcile.context import Crew, Ending, Pass
from deployer.reconcile.decide import HoldForApproval


async def act(crew: Crew, current: Pass, action: HoldForApproval) -> Ending:
    """The deployment waits in ``pending_approval`` with its plan; a newer deployment that
    arrived while it was planned supersedes it at once."""
    planned = current.with_plan()
    held = await crew.approvals.hold(planned, list(action.needed))
    newer = crew.queued(current.target)
    if newer is not None:
        await crew.approvals.superseded_by(newer)
    return Ending(held, None, changed=False)
