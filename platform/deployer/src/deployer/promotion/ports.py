"""What promotion needs from the world: a durable place for releases, promotions and holds (NATS
key-value in production, :mod:`deployer.adapters.promotion_store`)."""

from __future__ import annotations

from typing import Protocol

from deployer.promotion.model import Hold, Promotion
from deployer.promotion.releases import Release
from deployer.targets import Target


class PromotionStore(Protocol):
    """Releases by id, promotions by id, holds by target."""

    async def release(self, release_id: str) -> Release | None:
        """The release ``release_id``, if known."""

    async def put_release(self, release: Release) -> None:
        """Save ``release`` (the same id is the same release)."""

    async def releases(self) -> list[Release]:
        """Every known release, oldest first."""

    async def promotion(self, promotion_id: str) -> Promotion | None:
        """The promotion ``promotion_id``, if known."""

    async def put_promotion(self, promotion: Promotion) -> None:
        """Save ``promotion``."""

    async def promotions(self) -> list[Promotion]:
        """Every known promotion, oldest first."""

    async def hold(self, target: Target) -> Hold | None:
        """The hold on ``target``, if any."""

    async def put_hold(self, hold: Hold) -> None:
        """Hold ``hold.target``."""

    async def clear_hold(self, target: Target) -> None:
        """Remove the hold on ``target`` (nothing when there is none)."""

    async def holds(self) -> list[Hold]:
        """Every hold."""
