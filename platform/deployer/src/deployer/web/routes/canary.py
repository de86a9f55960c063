"""``/api/deployments/{id}/canary/{command}``: a person's command to a running canary."""

from fastapi import APIRouter, HTTPException

from deployer.canary.control import Command
from deployer.canary.registry import NoCanaryError
from deployer.records import DeploymentRecord
from deployer.web.deps import Caller, DecisionRequest, Orch, allowed, signed
from deployer.web.tokens import Scope
from kit.problems import problem_responses

router = APIRouter()


@router.post(
    "/deployments/{deployment_id}/canary/{command}",
    status_code=202,
    summary="Tell a running canary to promote (now), abort (back to the stable pods), pause "
    "or resume (deploy scope)",
    responses=problem_responses(404, 409),
)
async def canary(
    caller: Caller,
    orch: Orch,
    deployment_id: str,
    command: Command,
    body: DecisionRequest | None = None,
) -> DeploymentRecord:
    stored = await orch.views.deployment(deployment_id)
    record = allowed(caller, Scope.DEPLOY, deployment_id, stored)
    try:
        await orch.canaries.command(deployment_id, command, signed(caller, body))
    except NoCanaryError as exc:
        raise HTTPException(409, str(exc)) from None
    return record
