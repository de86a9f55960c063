"""``/api/services``: each service's release, and rolling one back."""

from fastapi import APIRouter
from pydantic import BaseModel, Field

from deployer.records import DeploymentRecord
from deployer.report.views import ServiceView
from deployer.web.auth import require
from deployer.web.deps import Caller, Orch, visible_releases
from deployer.web.tokens import Scope
from kit.problems import problem_responses

router = APIRouter()


class RollbackRequest(BaseModel):
    """Roll a service back to ``revision`` (default: the previous one)."""

    revision: int | None = Field(default=None, ge=1)


@router.get(
    "/services",
    summary="Every service's release (those the token may read)",
)
async def services(caller: Caller, orch: Orch) -> list[ServiceView]:
    require(caller, Scope.READ)
    return await visible_releases(orch, caller)


@router.post(
    "/services/{service}/rollback",
    status_code=202,
    summary="Roll a service back to an earlier Helm revision, in an environment (default: the "
    "first) (rollback scope)",
    responses=problem_responses(422),
)
async def rollback(
    caller: Caller,
    orch: Orch,
    service: str,
    body: RollbackRequest,
    environment: str | None = None,
) -> DeploymentRecord:
    require(caller, Scope.ROLLBACK, service)
    return await orch.admission.enqueue_rollback(service, body.revision, environment)
