"""A small server-rendered dashboard: releases, live rollouts, recent history with plans."""

from __future__ import annotations

from collections.abc import Callable

from fastapi import APIRouter
from fastapi.responses import HTMLResponse
from jinja2 import Environment, PackageLoader, select_autoescape

from deployer.api import service_views
from deployer.orchestrator import Orchestrator

_templates = Environment(
    loader=PackageLoader("deployer", "templates"), autoescape=select_autoescape(["html"])
)


def dashboard_router(orchestrator: Callable[[], Orchestrator]) -> APIRouter:
    """GET / renders the dashboard (no front-end build step, no JavaScript)."""
    router = APIRouter(include_in_schema=False)

    @router.get("/", response_class=HTMLResponse)
    async def dashboard() -> HTMLResponse:
        orch = orchestrator()
        history = list(reversed(await orch.store.all()))[:30]
        live = [record for record in history if not record.phase.terminal]
        html = _templates.get_template("dashboard.html").render(
            namespace=orch.namespace,
            services=await service_views(orch),
            live=live,
            history=history,
        )
        return HTMLResponse(html)

    return router
