"""Act: a deployment that reached Helm before the deployer restarted: report it succeeded."""

from __future__ import annotations

from deploy_contract.events import DeployPhase
from deployer.reconcile.context import Crew, Ending, Pass
from deployer.reconcile.decide import AlreadyApplied
from deployer.reconcile.state import Outcome


async def act(crew: Crew, current: Pass, action: AlreadyApplied) -> Ending:
    """It ends ``succeeded`` at the revision Helm holds; nothing is applied again."""
    image = str(current.observed.image) if current.observed.image else None
    outcome = Outcome(DeployPhase.SUCCEEDED, revision=action.revision, image=image)
    return Ending(current.record, outcome, changed=False)
