"""Act: skip a deployment whose plan changes nothing; no helm runs and no revision is added."""

from __future__ import annotations

from deploy_contract.events import DeployPhase
from deployer.actions import Outcome, SkipUnchanged


def skip(step: SkipUnchanged) -> Outcome:
    """The outcome of a skipped deployment: ``unchanged``, saying why and how to force it."""
    return Outcome(DeployPhase.UNCHANGED, step.reason)
