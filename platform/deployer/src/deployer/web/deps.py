"""What every route depends on, declared once: the running orchestrator and the calling token.

The service installs itself on the app (:func:`install`); the dependencies find it there, so
the routes need no closure over it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated, Any, Protocol

from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, Field

from deployer.ha.leadership import Leadership
from deployer.intake.checks import RejectedError
from deployer.orchestrator import Orchestrator
from deployer.promotion.requests import NotFoundError
from deployer.records import DeploymentRecord
from deployer.report.views import ServiceView
from deployer.web.auth import BASIC_CHALLENGE, authenticate, require
from deployer.web.forward import LeaderForwarding
from deployer.web.tokens import ApiToken, Scope, TokenBook
from kit.problems import problem_response

_bearer = HTTPBearer(auto_error=False)
Credentials = Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]


class WebApp(Protocol):
    """What the routes need of the deployer service."""

    def orchestrator(self) -> Orchestrator:
        """The running orchestrator (a 503 while it starts)."""

    def tokens(self) -> TokenBook:
        """The API tokens."""

    async def subscribe_deploy_events(self, callback: Callable[[Any], Awaitable[None]]) -> Any:
        """A subscription to every deploy event."""

    def leadership(self) -> Leadership | None:
        """Who leads (a standby forwards the API to the leader)."""


def install(service: WebApp) -> Callable[[FastAPI], None]:
    """An app hook that makes ``service`` what the routes' dependencies find."""

    async def refused(_: Request, exc: Exception) -> JSONResponse:
        return problem_response(422, str(exc))

    async def not_found(_: Request, exc: Exception) -> JSONResponse:
        return problem_response(404, str(exc))

    def hook(app: FastAPI) -> None:
        app.state.deployer = service
        app.add_middleware(LeaderForwarding, replicas=service)
        app.add_exception_handler(RejectedError, refused)
        app.add_exception_handler(NotFoundError, not_found)

    return hook


def web_app(request: Request) -> WebApp:
    """The deployer service the app serves."""
    service: WebApp = request.app.state.deployer
    return service


def orchestrator(request: Request) -> Orchestrator:
    """The running orchestrator."""
    return web_app(request).orchestrator()


def caller(request: Request, credentials: Credentials) -> ApiToken:
    """The calling token (Bearer, or Basic with the token as password); 401 without one."""
    return authenticate(web_app(request).tokens(), request, credentials)


def browser_caller(request: Request, credentials: Credentials) -> ApiToken:
    """The calling token; the 401 challenges a browser with Basic alone (it then asks)."""
    try:
        return caller(request, credentials)
    except HTTPException as exc:
        if exc.status_code != 401:
            raise
        raise HTTPException(
            401, exc.detail, headers={"WWW-Authenticate": BASIC_CHALLENGE}
        ) from None


Caller = Annotated[ApiToken, Depends(caller)]
BrowserCaller = Annotated[ApiToken, Depends(browser_caller)]
Orch = Annotated[Orchestrator, Depends(orchestrator)]
Service = Annotated[WebApp, Depends(web_app)]


class DecisionRequest(BaseModel):
    """An approval or denial; ``note`` is kept in the deployment's history."""

    note: str | None = Field(default=None, max_length=500)


def allowed(
    caller: ApiToken, scope: Scope, deployment_id: str, stored: DeploymentRecord | None
) -> DeploymentRecord:
    """The deployment, when the token may act on it with ``scope``; 404 for one it may not read
    (so it learns nothing of other services), 403 without the scope."""
    if stored is None or not caller.sees(stored.service):
        require(caller, scope)
        raise HTTPException(404, f"no deployment {deployment_id} (that this token may read)")
    require(caller, scope, stored.service)
    return stored


def signed(caller: ApiToken, body: DecisionRequest | None) -> str:
    """Who acted, as the history records it: the token's name and the note."""
    return caller.name + (f" ({body.note})" if body and body.note else "")


async def visible_releases(orch: Orchestrator, caller: ApiToken) -> list[ServiceView]:
    """Each service's release (asked of Helm now) with the deployer's last outcome, of the
    services ``caller`` may read."""
    return await orch.views.releases([t for t in orch.targets() if caller.sees(t.service)])
