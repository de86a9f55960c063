"""Act: ``helm upgrade --install`` with the planned values; a failed rollout is rolled back by
helm (``--rollback-on-failure``) and ends ``rolled_back`` or ``failed``."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

from deploy_contract.events import DeployPhase
from deployer.actions import Observation, Outcome, description_for, failure_outcome
from deployer.adapters.helm import Helm, HelmFinalError
from deployer.observe import observe
from deployer.records import DeploymentRecord
from deployer.settings import DeployerSettings


async def upgrade(
    helm: Helm,
    settings: DeployerSettings,
    record: DeploymentRecord,
    chart: Path,
    values: dict[str, Any],
    observed: Observation,
    on_start: Callable[[float], None] | None = None,
    stop: asyncio.Event | None = None,
    description: str | None = None,
) -> Outcome:
    """Upgrade the release; ``observed`` is the release before (to tell a rollback happened),
    ``description`` the release description (default: the deployment's, see description_for).
    Raises HelmRetryableError for transient failures (the caller retries)."""
    try:
        result = await helm.upgrade_install(
            record.service,
            chart,
            values,
            timeout_seconds=settings.helm_timeout_seconds,
            description=description or description_for(record),
            history_max=settings.history_max,
            on_start=on_start,
            stop=stop,
        )
    except HelmFinalError as exc:
        after = await observe(helm, record.service)
        return failure_outcome(observed, after, str(exc), exc.stderr)
    revision = result.revision or (observed.revision or 0) + 1
    return Outcome(DeployPhase.SUCCEEDED, revision=revision)
