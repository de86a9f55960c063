"""Act: ``helm rollback`` to a revision (None: the previous one), waiting for readiness."""

from __future__ import annotations

from deploy_contract.events import DeployPhase
from deployer.actions import Outcome, description_for
from deployer.adapters.helm import Helm
from deployer.observe import observe
from deployer.records import DeploymentRecord
from deployer.settings import DeployerSettings


async def rollback(helm: Helm, settings: DeployerSettings, record: DeploymentRecord) -> Outcome:
    """Roll the release back as ``record`` asks; the outcome carries the new revision. Helm
    errors propagate (the caller decides retry or final)."""
    await helm.rollback(
        record.service,
        record.rollback_to_revision or None,
        timeout_seconds=settings.helm_timeout_seconds,
        description=description_for(record),
    )
    after = await observe(helm, record.service)
    return Outcome(DeployPhase.SUCCEEDED, revision=after.revision or 0)
