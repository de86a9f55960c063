"""The deployer's HTTP API under ``/api``: services, history, plan, manual deploy and rollback,
approvals, environments and promotions, canary commands, drift, live events (one routes module
per resource)."""

from fastapi import APIRouter

from deployer.web.routes import canary, deployments, drift, events, promotions, services
from kit.problems import problem_responses


def api_router() -> APIRouter:
    """Every API route; each needs a token with its scope (see deployer.web.deps), so each may
    answer 401 and 403; a refused request (deployer.intake.checks.RejectedError) is a 422."""
    router = APIRouter(prefix="/api", tags=["deployer"], responses=problem_responses(401, 403))
    for routes in (services, deployments, promotions, canary, drift, events):
        router.include_router(routes.router)
    return router
