"""Releases, promotions and holds in NATS key-value buckets: the promotion store of
:mod:`deployer.promotion.ports`."""

from __future__ import annotations

from typing import TypeVar

from nats.js import JetStreamContext
from nats.js.errors import KeyNotFoundError
from nats.js.kv import KeyValue
from pydantic import BaseModel

from deployer.adapters.store import KEEP_SECONDS, bucket, bucket_keys
from deployer.promotion.model import Hold, Promotion
from deployer.promotion.releases import Release
from deployer.targets import Target

RELEASES_BUCKET = "deployer-releases"
PROMOTIONS_BUCKET = "deployer-promotions"
HOLDS_BUCKET = "deployer-holds"
Model = TypeVar("Model", bound=BaseModel)


def _hold_key(target: Target) -> str:
    return f"{target.environment}.{target.service}"


async def _get(kv: KeyValue, key: str, model: type[Model]) -> Model | None:
    try:
        entry = await kv.get(key)
    except KeyNotFoundError:
        return None
    return model.model_validate_json(entry.value) if entry.value else None


class PromotionKV:
    """The promotion store over three buckets."""

    def __init__(
        self, js: JetStreamContext, releases: KeyValue, promotions: KeyValue, holds: KeyValue
    ) -> None:
        self._js = js
        self._releases = releases
        self._promotions = promotions
        self._holds = holds

    @classmethod
    async def open(cls, js: JetStreamContext, replicas: int) -> PromotionKV:
        """Open (creating when missing) the buckets, with ``replicas`` copies."""
        return cls(
            js,
            await bucket(js, RELEASES_BUCKET, KEEP_SECONDS, replicas),
            await bucket(js, PROMOTIONS_BUCKET, KEEP_SECONDS, replicas),
            await bucket(js, HOLDS_BUCKET, None, replicas),
        )

    async def _all(self, kv: KeyValue, name: str, model: type[Model]) -> list[Model]:
        found = [await _get(kv, key, model) for key in await bucket_keys(self._js, name)]
        return [item for item in found if item is not None]

    async def release(self, release_id: str) -> Release | None:
        """The release ``release_id``, if known."""
        return await _get(self._releases, release_id, Release)

    async def put_release(self, release: Release) -> None:
        """Save ``release``."""
        await self._releases.put(release.id, release.model_dump_json().encode())

    async def releases(self) -> list[Release]:
        """Every known release, oldest first."""
        releases = await self._all(self._releases, RELEASES_BUCKET, Release)
        return sorted(releases, key=lambda r: r.created_at)

    async def promotion(self, promotion_id: str) -> Promotion | None:
        """The promotion ``promotion_id``, if known."""
        return await _get(self._promotions, promotion_id, Promotion)

    async def put_promotion(self, promotion: Promotion) -> None:
        """Save ``promotion``."""
        await self._promotions.put(promotion.id, promotion.model_dump_json().encode())

    async def promotions(self) -> list[Promotion]:
        """Every known promotion, oldest first."""
        promotions = await self._all(self._promotions, PROMOTIONS_BUCKET, Promotion)
        return sorted(promotions, key=lambda p: p.created_at)

    async def hold(self, target: Target) -> Hold | None:
        """The hold on ``target``, if any."""
        return await _get(self._holds, _hold_key(target), Hold)

    async def put_hold(self, hold: Hold) -> None:
        """Hold ``hold.target``."""
        await self._holds.put(_hold_key(hold.target), hold.model_dump_json().encode())

    async def clear_hold(self, target: Target) -> None:
        """Remove the hold on ``target``."""
        try:
            await self._holds.purge(_hold_key(target))
        except KeyNotFoundError:
            return

    async def holds(self) -> list[Hold]:
        """Every hold."""
        return await self._all(self._holds, HOLDS_BUCKET, Hold)
