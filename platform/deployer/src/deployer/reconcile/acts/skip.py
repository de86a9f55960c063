"""Act: skip a deployment whose plan changes nothing; no helm runs and no revision is added."""

from __future__ import annotations

from deploy_contract.events import DeployPhase
from deployer.reconcile.context import Crew, Ending, Pass
from deployer.reconcile.decide import SkipUnchanged
from deployer.reconcile.state import Outcome


async def act(crew: Crew, current: Pass, action: SkipUnchanged) -> Ending:
    """The deployment ends ``unchanged`` with its plan, saying why and how to force it."""
    planned = current.with_plan()
    return Ending(planned, Outcome(DeployPhase.UNCHANGED, action.reason), changed=False)
