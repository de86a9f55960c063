"""Act: bring a release out of ``pending-*`` (left so by a killed helm); the loop then observes
it again."""

from __future__ import annotations

import logging

from deployer.reconcile.context import Crew, Pass
from deployer.reconcile.decide import RecoverPending

log = logging.getLogger(__name__)


async def act(crew: Crew, current: Pass, action: RecoverPending) -> None:
    """Helm's own rollback or uninstall of the pending release."""
    done = await crew.ports.at(current.target.environment).apply.recover_pending(
        current.target.release
    )
    log.warning("recovered a pending release", extra={"release": str(current.target), "did": done})
