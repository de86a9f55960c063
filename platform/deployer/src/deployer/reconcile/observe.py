"""Observe: a release's state, computed once per pass of the reconcile loop.

The deployer is the only writer of its releases, so what it applied last is what Helm would say:
after a successful apply the loop hands the observation it would make to :meth:`settle`, and the
next pass uses it instead of asking Helm again. Anything else (a failure, an error, a restart)
drops it, in that one method, and the next pass asks Helm.
"""

from __future__ import annotations

import asyncio

from deploy_contract.images import ImageRef, ImageRejectedError, parse_image
from deployer.reconcile.ports import Ports, ReleaseInfo, Releases
from deployer.reconcile.state import Observation
from deployer.targets import Target


def observation_of(info: ReleaseInfo | None, manifest: str | None = None) -> Observation:
    """The observation of a release as its store reports it (None: no release)."""
    if info is None:
        return Observation(status=None)
    image: ImageRef | None = None
    if info.image_tag and info.image_repository:
        try:
            image = parse_image(f"{info.image_repository}:{info.image_tag}")
        except ImageRejectedError:
            image = None
    return Observation(
        status=info.status,
        revision=info.revision,
        description=info.description,
        image=image,
        pending=info.pending,
        manifest=manifest,
    )


class ReleaseObserver:
    """Observes releases; remembers the one observation a successful apply makes known."""

    def __init__(self, ports: Ports) -> None:
        self._ports = ports
        self._known: dict[Target, Observation] = {}

    async def observe(self, target: Target) -> Observation:
        """The release's status and recorded manifest (what this deployer applied last, when it
        knows it)."""
        known = self._known.get(target)
        if known is not None:
            return known
        releases = self._releases(target)
        info, manifest = await asyncio.gather(
            releases.status(target.release), releases.get_manifest(target.release)
        )
        return observation_of(info, manifest)

    async def status(self, target: Target) -> Observation:
        """The release's status alone, always asked of the release store."""
        return observation_of(await self._releases(target).status(target.release))

    def _releases(self, target: Target) -> Releases:
        return self._ports.at(target.environment).releases

    def settle(self, target: Target, applied: Observation | None, *, changed: bool) -> None:
        """After a pass: remember ``applied`` (what a successful apply left), or forget what was
        known when the release ``changed`` otherwise (or may have)."""
        if applied is not None:
            self._known[target] = applied
        elif changed:
            self._known.pop(target, None)
