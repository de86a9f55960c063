"""Act: apply a release's drifted objects again, server-side as helm applies them (conflicts
forced). Runs in the release's lane (see :class:`deployer.drift.watch.DriftWatch`)."""

from __future__ import annotations

import asyncio

from deploy_contract.drift import DriftReport
from deployer.drift.check import Drift
from deployer.reconcile.ports import LiveObjects


async def correct_drift(objects: LiveObjects, drift: Drift) -> DriftReport:
    """Reapply each drifted object (with the live value kept at ignored pointers); the report,
    now saying corrected. Raises a StepError when the API server refuses."""
    await asyncio.gather(*(objects.apply(obj, dry_run=False) for obj in drift.corrections))
    return drift.report.model_copy(update={"corrected": True})
