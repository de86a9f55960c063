"""The ``started`` report of a deployment that is about to change its release."""

from __future__ import annotations

from deploy_contract.events import DeployPhase
from deployer.reconcile.context import Crew, Pass
from deployer.records import DeploymentRecord


async def report_started(crew: Crew, current: Pass, note: str = "") -> DeploymentRecord:
    """Record and publish ``started`` with the plan (``note`` leads its summary)."""
    started = current.with_plan(note).moved_to(DeployPhase.STARTED)
    await crew.reporter.record(started)
    return started
