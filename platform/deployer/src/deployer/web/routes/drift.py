"""``/api/drift``: the last drift check of each service, and checking now."""

from fastapi import APIRouter

from deploy_contract.drift import DriftMode, DriftReport
from deployer.web.auth import require
from deployer.web.deps import Caller, Orch
from deployer.web.tokens import Scope
from kit.problems import problem_responses

router = APIRouter()


@router.get(
    "/drift",
    summary="The last drift check of each service (those the token may read)",
)
async def drift(caller: Caller, orch: Orch) -> list[DriftReport]:
    require(caller, Scope.READ)
    reports = orch.drift.reports()
    return [reports[t] for t in sorted(reports) if caller.sees(t.service)]


@router.post(
    "/drift",
    summary="Check for drift now, of one service or all (read scope; deploy where the "
    "service's mode is correct, which reapplies its manifest)",
    responses=problem_responses(422),
)
async def check_drift(
    caller: Caller, orch: Orch, service: str | None = None, environment: str | None = None
) -> list[DriftReport]:
    require(caller, Scope.READ, service)
    targets = [orch.target(service, environment)] if service else orch.targets(environment)
    targets = [target for target in targets if caller.sees(target.service)]
    for target in targets:
        if orch.drift.mode(target.service) is DriftMode.CORRECT:
            require(caller, Scope.DEPLOY, target.service)
    return [await orch.drift.check(target) for target in targets]
