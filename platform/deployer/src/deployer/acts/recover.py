"""Act: bring a release out of ``pending-*`` (left so by a killed helm), then observe it again."""

from __future__ import annotations

import logging

from deployer.actions import Observation
from deployer.adapters.helm import Helm
from deployer.observe import observe

log = logging.getLogger(__name__)


async def recover(helm: Helm, release: str) -> Observation:
    """Recover the pending release (helm's own rollback or uninstall); the release after it."""
    done = await helm.recover_pending(release)
    log.warning("recovered a pending release", extra={"release": release, "did": done})
    return await observe(helm, release)
