"""Act: refuse an image older than the deployed one (the request is not a rollback)."""

from __future__ import annotations

from deploy_contract.events import DeployPhase
from deployer.reconcile.context import Crew, Ending, Pass
from deployer.reconcile.decide import RejectOlder
from deployer.reconcile.state import Outcome


async def act(crew: Crew, current: Pass, action: RejectOlder) -> Ending:
    """It ends ``rejected`` with the reason; the release is not touched."""
    return Ending(current.record, Outcome(DeployPhase.REJECTED, action.reason), changed=False)
