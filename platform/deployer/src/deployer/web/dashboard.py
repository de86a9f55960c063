"""A small dashboard: releases, each environment's release with the gates coming into it and the
DORA figures, live rollouts, recent history, and each deployment's plan.

The page is rendered on the server (it reads fine without JavaScript) and then kept live by
``dashboard.js`` (plain JavaScript, no build step): it listens to the server-sent events of
``/api/events`` and updates the tables in place (docs/dashboard.md).
"""

from datetime import UTC, datetime, timedelta
from importlib.resources import files
from typing import Any

from fastapi import APIRouter, HTTPException
from fastapi.responses import HTMLResponse, Response
from jinja2 import Environment, PackageLoader, select_autoescape

from deployer.orchestrator import Orchestrator
from deployer.records import DeploymentRecord
from deployer.web.auth import require
from deployer.web.deps import BrowserCaller, Orch, visible_releases
from deployer.web.tokens import ApiToken, Scope

_templates = Environment(
    loader=PackageLoader("deployer.web", "templates"), autoescape=select_autoescape(["html"])
)
HISTORY_LIMIT = 30
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


def dashboard_router() -> APIRouter:
    """GET / renders the dashboard, GET /deployments/<id>/plan a deployment's plan; both need a
    token with the read scope (a browser asks for it: any user name, the token as password, and
    sends it again with the page's event stream and fetches, which are same-origin)."""
    router = APIRouter(include_in_schema=False)

    @router.get("/", response_class=HTMLResponse)
    async def dashboard(caller: BrowserCaller, orch: Orch) -> HTMLResponse:
        require(caller, Scope.READ)
        records = [r for r in reversed(await orch.views.deployments()) if caller.sees(r.service)]
        return _page(
            "dashboard.html",
            **await _environments(orch, caller),
            namespace=", ".join(spec.namespace for spec in orch.environments.ordered()),
            services=await visible_releases(orch, caller),
            live=[record for record in records if not record.phase.terminal],
            history=[record for record in records if record.phase.terminal][:HISTORY_LIMIT],
        )

    @router.get("/fragments/services", response_class=HTMLResponse)
    async def services_fragment(caller: BrowserCaller, orch: Orch) -> HTMLResponse:
        """The rows of the services table, which the page swaps in after a deployment ends."""
        require(caller, Scope.READ)
        return _page("services_rows.html", services=await visible_releases(orch, caller))

    @router.get("/fragments/environments", response_class=HTMLResponse)
    async def environments_fragment(caller: BrowserCaller, orch: Orch) -> HTMLResponse:
        """Each service's release per environment, the gates coming in, and the DORA figures,
        which the page swaps in after a promotion or a deployment changes."""
        require(caller, Scope.READ)
        return _page("environments.html", **await _environments(orch, caller))

    @router.get("/deployments/{deployment_id}/plan", response_class=HTMLResponse)
    async def plan(caller: BrowserCaller, orch: Orch, deployment_id: str) -> HTMLResponse:
        require(caller, Scope.READ)
        record = await orch.views.deployment(deployment_id)
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


async def _environments(orch: Orchestrator, caller: ApiToken) -> dict[str, Any]:
    """What the environments section shows: the board, the names, the DORA figures."""
    now = datetime.now(UTC)
    return {
        "environment_names": orch.environments.names,
        "board": [row for row in await orch.promotion_views.board() if caller.sees(row.service)],
        "dora": [
            figures
            for figures in await orch.promotion_views.dora(now - timedelta(days=30), now)
            if caller.sees(figures.service)
        ],
    }


def _duration(seconds: float | None) -> str:
    """``seconds`` as people read it: 45 s, 12 min, 3.5 h, 2.1 d; a dash for none."""
    if seconds is None:
        return "-"
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    if seconds < 172800:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} d"


_templates.globals["duration"] = _duration


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
