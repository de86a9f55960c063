"""``/api/deployments`` and ``/api/plan``: the history, one deployment, planning and deploying
an image, approving or denying a held deployment."""

import uuid
from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query

from deploy_contract.events import ArtifactPublished, DeployPhase
from deployer.queue.approvals import NotPendingError
from deployer.records import DeploymentRecord, Origin
from deployer.web.auth import require
from deployer.web.deps import Caller, DecisionRequest, Orch, allowed, signed
from deployer.web.tokens import Scope
from kit.problems import problem_responses

router = APIRouter()


@router.get(
    "/deployments",
    summary="Deployment history, newest first",
    responses=problem_responses(422),
)
async def history(
    caller: Caller,
    orch: Orch,
    service: str | None = None,
    environment: str | None = None,
    phase: DeployPhase | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> list[DeploymentRecord]:
    require(caller, Scope.READ, service)
    selected = [
        r
        for r in reversed(await orch.views.deployments())
        if (service is None or r.service == service)
        and (environment is None or r.environment == environment)
        and (phase is None or r.phase == phase)
        and caller.sees(r.service)
    ]
    return selected[:limit]


@router.get(
    "/deployments/{deployment_id}",
    responses=problem_responses(404),
)
async def deployment(caller: Caller, orch: Orch, deployment_id: str) -> DeploymentRecord:
    require(caller, Scope.READ)
    record = await orch.views.deployment(deployment_id)
    if record is None or not caller.sees(record.service):
        raise HTTPException(404, f"no deployment {deployment_id} (that this token may read)")
    return record


@router.post(
    "/plan",
    summary="Plan a deployment without changing anything (read scope)",
    responses=problem_responses(422),
)
async def plan(
    caller: Caller, orch: Orch, request: ArtifactPublished, environment: str | None = None
) -> dict[str, Any]:
    require(caller, Scope.READ, request.service)
    result = await orch.plan(request, environment)
    return {"summary": result.summary(), "plan": result.model_dump(mode="json")}


@router.post(
    "/deployments",
    status_code=202,
    summary="Deploy an image now (the same path and checks as a pipeline event)",
    responses=problem_responses(422),
)
async def deploy(caller: Caller, orch: Orch, request: ArtifactPublished) -> DeploymentRecord:
    require(caller, Scope.DEPLOY, request.service)
    checked = await orch.admission.check(request)
    return await orch.admission.enqueue(f"api-{uuid.uuid4()}", checked, Origin.API, None)


def decision_route(approving: bool) -> Callable[..., Awaitable[DeploymentRecord]]:
    """The route that approves (or denies) a held deployment."""

    async def route(
        caller: Caller, orch: Orch, deployment_id: str, body: DecisionRequest | None = None
    ) -> DeploymentRecord:
        stored = orch.approvals.pending(deployment_id) or await orch.views.deployment(deployment_id)
        allowed(caller, Scope.APPROVE, deployment_id, stored)
        by = signed(caller, body)
        try:
            if approving:
                return await orch.approvals.approve(deployment_id, by)
            return await orch.approvals.deny(deployment_id, by)
        except NotPendingError as exc:
            raise HTTPException(409, str(exc)) from None

    return route


for decision, summary in (
    ("approve", "Approve a deployment waiting in pending_approval (approve scope)"),
    ("deny", "Deny a deployment waiting in pending_approval: it ends rejected (approve scope)"),
):
    router.add_api_route(
        f"/deployments/{{deployment_id}}/{decision}",
        decision_route(decision == "approve"),
        methods=["POST"],
        response_model=DeploymentRecord,
        summary=summary,
        responses=problem_responses(404, 409),
    )
