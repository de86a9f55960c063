"""What people ask of the promoter: promote a release by hand, approve or cancel a waiting
promotion, hold automatic promotion into a service's environment or clear the hold.

The API's routes (and through them the CLI) call these. A refusal is a RejectedError (the API's
422) or a NotFoundError (its 404), whose message is what people read. The promoter's own passes
(``promoter.py``) decide the gates of what these leave waiting.
"""

from __future__ import annotations

from deploy_contract.events import DeployPhase
from deploy_contract.promotions import PromotionState
from deployer.intake.checks import RejectedError
from deployer.promotion.model import Approval, Hold, Promotion
from deployer.promotion.promoter import Promoter
from deployer.promotion.releases import Release
from deployer.records import DeploymentRecord
from deployer.targets import Target


class NotFoundError(LookupError):
    """No such promotion or hold; the message says which."""


class PromotionRequests:
    """The requests people make of ``promoter``'s promotions, checked and then saved through it."""

    def __init__(self, promoter: Promoter) -> None:
        self._promoter = promoter

    async def request(self, release_id: str, environment: str, by: str) -> Promotion:
        """A person promotes ``release_id`` into ``environment`` (RejectedError: unknown
        release or environment, the entry, or a release not verified in its upstream)."""
        release = await self._promoter.store.release(release_id)
        if release is None:
            raise RejectedError(
                f"unknown release {release_id!r}: GET /api/releases lists the releases"
            )
        spec = self._promoter.environments.get(environment)
        if spec.upstream is None:
            raise RejectedError(
                f"{environment} is where CI's releases enter: nothing is promoted into it"
            )
        if not spec.runs(release.service):
            raise RejectedError(
                f"{environment} does not run {release.service} "
                f"(it runs {', '.join(spec.services or [])})"
            )
        verified = await self._verified(release, spec.upstream)
        if verified is None:
            where = await self._verified_anywhere(release)
            hint = f" (it is verified in {', '.join(where)})" if where else ""
            raise RejectedError(
                f"{release.id} was never verified in {spec.upstream}, {environment}'s "
                f"upstream{hint}: promote it into {spec.upstream} first; environments are not "
                "skipped"
            )
        async with self._promoter.lock:
            promotion_id = Promotion.id_of(release.id, environment)
            known = await self._promoter.store.promotion(promotion_id)
            if known is not None and known.state is PromotionState.PROMOTED:
                raise RejectedError(f"{release.id} was already promoted into {environment}")
            if known is not None and not known.state.final:
                return known
            now = self._promoter.clock()
            await self._promoter.supersede_waiting(
                Target(environment, release.service), release, now
            )
            promotion = Promotion(
                id=promotion_id, release=release, source=spec.upstream, environment=environment,
                automatic=False, requested_by=by, upstream_deployment_id=verified.id,
                verified_at=verified.finished_at or now, created_at=now, updated_at=now,
            )  # fmt: skip
            await self._promoter.save(None, promotion)
        self._promoter.wake()
        return promotion

    async def _verified(self, release: Release, environment: str) -> DeploymentRecord | None:
        found = [
            r
            for r in await self._promoter.records.all()
            if r.release_id == release.id
            and r.environment == environment
            and r.phase is DeployPhase.SUCCEEDED
        ]
        return found[-1] if found else None

    async def _verified_anywhere(self, release: Release) -> list[str]:
        return sorted(
            {
                r.environment
                for r in await self._promoter.records.all()
                if r.release_id == release.id and r.phase is DeployPhase.SUCCEEDED
            }
        )

    async def approve(
        self, promotion_id: str, by: str, reason: str, *, override_freeze: bool = False
    ) -> Promotion:
        """A person approves a waiting promotion (overriding a freeze needs a reason)."""
        if override_freeze and not reason.strip():
            raise RejectedError("overriding a freeze needs a reason: say why it cannot wait")
        async with self._promoter.lock:
            promotion = await self._waiting(promotion_id)
            approval = Approval(
                by=by,
                reason=reason.strip(),
                override_freeze=override_freeze,
                at=self._promoter.clock(),
            )
            approved = promotion.moved(self._promoter.clock(), approval=approval)
            await self._promoter.save(promotion, approved)
        self._promoter.wake()
        return approved

    async def cancel(self, promotion_id: str, by: str) -> Promotion:
        """A person cancels a waiting promotion."""
        async with self._promoter.lock:
            promotion = await self._waiting(promotion_id)
            cancelled = promotion.moved(
                self._promoter.clock(), state=PromotionState.CANCELLED, reason=f"cancelled by {by}"
            )
            await self._promoter.save(promotion, cancelled)
        return cancelled

    async def _waiting(self, promotion_id: str) -> Promotion:
        promotion = await self._promoter.store.promotion(promotion_id)
        if promotion is None:
            raise NotFoundError(f"no promotion {promotion_id}: GET /api/promotions lists them")
        if promotion.state is not PromotionState.WAITING:
            raise RejectedError(
                f"promotion {promotion_id} is {promotion.state.value}, not waiting: "
                "nothing to decide"
            )
        return promotion

    async def hold(self, target: Target, reason: str, by: str) -> Hold:
        """A person holds automatic promotion into ``target``."""
        if not reason.strip():
            raise RejectedError("a hold needs a reason: say why promotion must wait")
        hold = Hold(
            environment=target.environment, service=target.service, reason=reason.strip(),
            since=self._promoter.clock(), by=by,
        )  # fmt: skip
        await self._promoter.store.put_hold(hold)
        self._promoter.wake()
        return hold

    async def clear(self, target: Target) -> Hold:
        """Clear the hold on ``target`` (NotFoundError: there is none)."""
        hold = await self._promoter.store.hold(target)
        if hold is None:
            raise NotFoundError(f"no hold on {target.service} in {target.environment}")
        await self._promoter.store.clear_hold(target)
        self._promoter.wake()
        return hold
