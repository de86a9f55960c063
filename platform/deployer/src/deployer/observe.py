"""Observe a release: what Helm says about it right now, as an :class:`Observation`."""

from __future__ import annotations

from deploy_contract.images import ImageRejectedError, parse_image
from deployer.actions import Observation
from deployer.adapters.helm import Helm


async def observe(helm: Helm, release: str) -> Observation:
    """The release's status, revision, description and image (status None: no release)."""
    status = await helm.status(release)
    if status is None:
        return Observation(status=None)
    image = None
    if status.image_tag and status.image_repository:
        try:
            image = parse_image(f"{status.image_repository}:{status.image_tag}")
        except ImageRejectedError:
            image = None
    return Observation(
        status=status.status,
        revision=status.revision,
        description=status.description,
        image=image,
    )
