"""A small dashboard: releases, live rollouts, recent history, and each deployment's plan.

The page is rendered on the server (it reads fine without JavaScript) and then kept live by
``dashboard.js`` (plain JavaScript, no build step): it listens to the server-sent events of
``/api/events`` and updates the tables in place (docs/dashboard.md).
"""

from collections.abc import Callable
from importlib.resources import files
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import HTMLResponse, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from jinja2 import Environment, PackageLoader, select_autoescape

from deployer.orchestrator import Orchestrator
from deployer.records import DeploymentRecord
from deployer.web.api import service_views
from deployer.web.auth import require, token_dependency
from deployer.web.tokens import ApiToken, Scope, TokenBook

_templates = Environment(
    loader=PackageLoader("deployer.web", "templates"), autoescape=select_autoescape(["html"])
)
HISTORY_LIMIT = 30
# Browsers answer a Basic challenge only when it is the header's first (Chromium ignores the
# API's combined "Bearer, Basic ..." and shows the 401 without asking): the pages send their own.
BASIC_CHALLENGE = 'Basic realm="deployer", charset="UTF-8"'
_bearer = HTTPBearer(auto_error=False)
# Scripts only from the deployer itself (no inline script, no eval); the page talks to its own
# origin only; the inline <style> is the one exception.
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; connect-src 'self'; style-src 'unsafe-inline'; "
    "img-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


def dashboard_router(
    orchestrator: Callable[[], Orchestrator], tokens: Callable[[], TokenBook]
) -> APIRouter:
    """GET / renders the dashboard, GET /deployments/<id>/plan a deployment's plan; both need a
    token with the read scope (a browser asks for it: any user name, the token as password, and
    sends it again with the page's event stream and fetches, which are same-origin)."""
    router = APIRouter(include_in_schema=False)
    # A local alias, evaluated here (this module has no postponed annotations for FastAPI).
    Caller = Annotated[ApiToken, Depends(_browser_caller(tokens))]  # noqa: N806

    @router.get("/", response_class=HTMLResponse)
    async def dashboard(caller: Caller) -> HTMLResponse:
        require(caller, Scope.READ)
        orch = orchestrator()
        records = [r for r in reversed(await orch.views.deployments()) if caller.sees(r.service)]
        return _page(
            "dashboard.html",
            namespace=orch.namespace,
            services=await service_views(orch, caller),
            live=[record for record in records if not record.phase.terminal],
            history=[record for record in records if record.phase.terminal][:HISTORY_LIMIT],
        )

    @router.get("/fragments/services", response_class=HTMLResponse)
    async def services_fragment(caller: Caller) -> HTMLResponse:
        """The rows of the services table, which the page swaps in after a deployment ends."""
        require(caller, Scope.READ)
        return _page("services_rows.html", services=await service_views(orchestrator(), caller))

    @router.get("/deployments/{deployment_id}/plan", response_class=HTMLResponse)
    async def plan(caller: Caller, deployment_id: str) -> HTMLResponse:
        require(caller, Scope.READ)
        record = await orchestrator().views.deployment(deployment_id)
        if record is None or not caller.sees(record.service):
            raise HTTPException(404, f"no deployment {deployment_id} (that this token may read)")
        return _page("plan.html", d=record, plan=_plan_view(record))

    @router.get("/dashboard.js")
    async def script() -> Response:
        """The page's script: public code, the same for everyone, so it needs no token."""
        source = files("deployer.web").joinpath("templates/dashboard.js").read_text()
        return Response(
            source,
            media_type="text/javascript",
            headers={"Cache-Control": "no-cache", "X-Content-Type-Options": "nosniff"},
        )

    return router


def _browser_caller(tokens: Callable[[], TokenBook]) -> Callable[..., ApiToken]:
    """The API's token dependency, whose 401 challenges a browser with Basic alone."""
    caller = token_dependency(tokens)

    def browser_caller(
        request: Request,
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    ) -> ApiToken:
        try:
            token: ApiToken = caller(request, credentials)
        except HTTPException as exc:
            if exc.status_code != 401:
                raise
            raise HTTPException(
                401, exc.detail, headers={"WWW-Authenticate": BASIC_CHALLENGE}
            ) from None
        return token

    return browser_caller


def _page(template: str, **context: Any) -> HTMLResponse:
    html = _templates.get_template(template).render(**context)
    return HTMLResponse(html, headers=_HEADERS)


def _plan_view(record: DeploymentRecord) -> dict[str, Any] | None:
    """The stored plan, with the lists the template iterates present even when empty."""
    if record.plan is None:
        return None
    plan = dict(record.plan)
    for key in ("workloads", "resources", "warnings", "notices"):
        plan[key] = plan.get(key) or []
    return plan
