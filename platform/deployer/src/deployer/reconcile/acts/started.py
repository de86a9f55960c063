"""The ``started`` report of a deployment that is about to change its release."""

from __future__ import annotations

from deploy_contract.events import DeployPhase
from deployer.reconcile.context import Crew, Pass
from deployer.records import DeploymentRecord


async def report_started(crew: Crew, current: Pass, note: str = "") -> DeploymentRecord:
    """Record and publish ``started`` with the plan (``note`` leads its summary)."""
    assert current.planned is not None
    plan = current.planned.plan
    started = current.record.moved_to(DeployPhase.STARTED).model_copy(
        update={"plan": plan.model_dump(mode="json"), "plan_summary": note + plan.summary()}
    )
    await crew.reporter.record(started)
    return started
