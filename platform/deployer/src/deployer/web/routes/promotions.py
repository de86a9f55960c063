"""``/api/environments``, ``/api/releases``, ``/api/promotions``, ``/api/holds`` and
``/api/dora``: where releases stand, promoting them, holds, and the DORA metrics."""

from datetime import UTC, datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query
from pydantic import BaseModel, Field

from deploy_contract.promotions import PromotionState
from deployer.promotion.dora import DoraFigures
from deployer.promotion.environments import EnvironmentSpec
from deployer.promotion.model import Hold, Promotion
from deployer.promotion.views import ReleaseView, ServiceRow
from deployer.web.auth import require
from deployer.web.deps import Caller, Orch
from deployer.web.tokens import Scope
from kit.problems import problem_responses

router = APIRouter()


class PromotionRequest(BaseModel):
    """Promote ``release`` into ``environment`` (from that environment's upstream)."""

    release: str = Field(min_length=1, max_length=200, examples=["order-3f2a9c1b7d4e"])
    environment: str = Field(min_length=1, max_length=40, examples=["prod"])


class ApprovalRequest(BaseModel):
    """A person's yes; ``overrideFreeze`` lets the promotion through a freeze (with a reason)."""

    reason: str = Field(default="", max_length=500)
    override_freeze: bool = Field(default=False, alias="overrideFreeze")

    model_config = {"populate_by_name": True}


class HoldRequest(BaseModel):
    """Why automatic promotion must wait."""

    reason: str = Field(min_length=1, max_length=500)


@router.get("/environments", summary="The environments, in promotion order, with their rules")
async def environments(caller: Caller, orch: Orch) -> list[EnvironmentSpec]:
    require(caller, Scope.READ)
    return orch.environments.ordered()


@router.get(
    "/environments/board",
    summary="Per service, each environment's release and the gates coming into it",
)
async def environments_board(caller: Caller, orch: Orch) -> list[ServiceRow]:
    require(caller, Scope.READ)
    return [row for row in await orch.promotion_views.board() if caller.sees(row.service)]


@router.get(
    "/releases",
    summary="Releases, newest first, and where each stands",
    responses=problem_responses(422),
)
async def releases(
    caller: Caller,
    orch: Orch,
    service: str | None = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 20,
) -> list[ReleaseView]:
    require(caller, Scope.READ, service)
    views = await orch.promotion_views.releases()
    return [
        v
        for v in views
        if (service is None or v.release.service == service) and caller.sees(v.release.service)
    ][:limit]


@router.get("/promotions", summary="Promotions, newest first", responses=problem_responses(422))
async def promotions(
    caller: Caller,
    orch: Orch,
    service: str | None = None,
    environment: str | None = None,
    state: PromotionState | None = None,
) -> list[Promotion]:
    require(caller, Scope.READ, service)
    if environment is not None:
        orch.environments.get(environment)
    return [
        p
        for p in reversed(await orch.promoter.store.promotions())
        if (service is None or p.service == service)
        and (environment is None or p.environment == environment)
        and (state is None or p.state is state)
        and caller.sees(p.service)
    ]


@router.get("/promotions/{promotion_id}", responses=problem_responses(404))
async def promotion(caller: Caller, orch: Orch, promotion_id: str) -> Promotion:
    require(caller, Scope.READ)
    found = await orch.promoter.store.promotion(promotion_id)
    if found is None or not caller.sees(found.service):
        raise HTTPException(404, f"no promotion {promotion_id} (that this token may read)")
    return found


@router.post(
    "/promotions",
    status_code=202,
    summary="Promote a release into an environment from its upstream; its gates still apply "
    "(deploy scope)",
    responses=problem_responses(422),
)
async def promote(caller: Caller, orch: Orch, body: PromotionRequest) -> Promotion:
    release = await orch.promoter.store.release(body.release)
    require(caller, Scope.DEPLOY, release.service if release else None)
    return await orch.promotions.request(body.release, body.environment, caller.name)


async def _readable(caller: Caller, orch: Orch, promotion_id: str, scope: Scope) -> Promotion:
    found = await orch.promoter.store.promotion(promotion_id)
    if found is None or not caller.sees(found.service):
        require(caller, scope)
        raise HTTPException(404, f"no promotion {promotion_id} (that this token may read)")
    require(caller, scope, found.service)
    return found


@router.post(
    "/promotions/{promotion_id}/approve",
    summary="Approve a waiting promotion; with overrideFreeze and a reason, through a freeze "
    "(approve scope)",
    responses=problem_responses(404, 422),
)
async def approve(
    caller: Caller, orch: Orch, promotion_id: str, body: ApprovalRequest | None = None
) -> Promotion:
    await _readable(caller, orch, promotion_id, Scope.APPROVE)
    body = body or ApprovalRequest()
    return await orch.promotions.approve(
        promotion_id, caller.name, body.reason, override_freeze=body.override_freeze
    )


@router.post(
    "/promotions/{promotion_id}/cancel",
    summary="Cancel a waiting promotion (deploy scope)",
    responses=problem_responses(404, 422),
)
async def cancel(caller: Caller, orch: Orch, promotion_id: str) -> Promotion:
    await _readable(caller, orch, promotion_id, Scope.DEPLOY)
    return await orch.promotions.cancel(promotion_id, caller.name)


@router.get("/holds", summary="The holds on automatic promotion")
async def holds(caller: Caller, orch: Orch) -> list[Hold]:
    require(caller, Scope.READ)
    return [h for h in await orch.promoter.store.holds() if caller.sees(h.service)]


@router.put(
    "/holds/{environment}/{service}",
    summary="Hold automatic promotion of a service into an environment (deploy scope)",
    responses=problem_responses(422),
)
async def hold(
    caller: Caller, orch: Orch, environment: str, service: str, body: HoldRequest
) -> Hold:
    require(caller, Scope.DEPLOY, service)
    return await orch.promotions.hold(orch.target(service, environment), body.reason, caller.name)


@router.delete(
    "/holds/{environment}/{service}",
    summary="Clear a hold: automatic promotion resumes (approve scope)",
    responses=problem_responses(404, 422),
)
async def clear_hold(caller: Caller, orch: Orch, environment: str, service: str) -> Hold:
    require(caller, Scope.APPROVE, service)
    return await orch.promotions.clear(orch.target(service, environment))


@router.get(
    "/dora",
    summary="DORA metrics per service and environment over a window (default: 30 days)",
    responses=problem_responses(422),
)
async def dora(
    caller: Caller,
    orch: Orch,
    since: datetime | None = None,
    until: datetime | None = None,
) -> list[DoraFigures]:
    require(caller, Scope.READ)
    end = until or datetime.now(UTC)
    start = since or end - timedelta(days=30)
    if start.tzinfo is None or end.tzinfo is None:
        raise HTTPException(422, "since and until need a UTC offset, e.g. 2026-12-01T00:00:00Z")
    if start >= end:
        raise HTTPException(422, f"since ({start.isoformat()}) must be before until")
    figures = await orch.promotion_views.dora(start, end)
    return [f for f in figures if caller.sees(f.service)]
