"""The apply step behind a fence: every write to a release first proves that this replica still
holds the release's lane (see :mod:`deployer.ha.leadership`)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace

from deployer.reconcile.ports import Applied, ApplyRequest, ApplyStep, Marks, Place
from deployer.targets import Target

Fence = Callable[[Target], Awaitable[None]]


def fenced(place: Place, fence: Fence, environment: str) -> Place:
    """``place`` whose apply step proves the lane's lease before each write."""
    return replace(place, apply=FencedApply(environment, place.apply, fence))


@dataclass
class FencedApply:
    """An :class:`ApplyStep` of one environment whose every operation is fenced."""

    environment: str
    inner: ApplyStep
    fence: Fence

    async def apply(self, request: ApplyRequest) -> Applied:
        """The inner apply, once the lane is proven held."""
        await self.fence(Target(self.environment, request.release))
        return await self.inner.apply(request)

    async def rollback(
        self,
        release: str,
        revision: int | None,
        *,
        timeout_seconds: float,
        description: str,
        marks: Marks | None = None,
    ) -> Applied:
        """The inner rollback, once the lane is proven held."""
        await self.fence(Target(self.environment, release))
        return await self.inner.rollback(
            release, revision, timeout_seconds=timeout_seconds, description=description, marks=marks
        )

    async def recover_pending(self, release: str) -> str | None:
        """The inner recovery of a pending release, once the lane is proven held: only the
        lane's holder may unblock it, so never while the replica that left it pending still
        holds the lane."""
        await self.fence(Target(self.environment, release))
        return await self.inner.recover_pending(release)
