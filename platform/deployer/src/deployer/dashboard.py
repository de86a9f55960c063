"""A small server-rendered dashboard: releases, live rollouts, recent history with plans."""

from collections.abc import Callable
from typing import Annotated

from fastapi import APIRouter, Depends
from fastapi.responses import HTMLResponse
from jinja2 import Environment, PackageLoader, select_autoescape

from deployer.api import service_views
from deployer.auth import require, token_dependency
from deployer.orchestrator import Orchestrator
from deployer.tokens import ApiToken, Scope, TokenBook

_templates = Environment(
    loader=PackageLoader("deployer", "templates"), autoescape=select_autoescape(["html"])
)


def dashboard_router(
    orchestrator: Callable[[], Orchestrator], tokens: Callable[[], TokenBook]
) -> APIRouter:
    """GET / renders the dashboard (no front-end build step, no JavaScript); it needs a token
    with the read scope (a browser asks for it: any user name, the token as password)."""
    router = APIRouter(include_in_schema=False)
    # A local alias, evaluated here (this module has no postponed annotations for FastAPI).
    Caller = Annotated[ApiToken, Depends(token_dependency(tokens))]  # noqa: N806

    @router.get("/", response_class=HTMLResponse)
    async def dashboard(caller: Caller) -> HTMLResponse:
        require(caller, Scope.READ)
        orch = orchestrator()
        records = [r for r in await orch.store.all() if caller.sees(r.service)]
        history = list(reversed(records))[:30]
        live = [record for record in history if not record.phase.terminal]
        html = _templates.get_template("dashboard.html").render(
            namespace=orch.namespace,
            services=await service_views(orch, caller),
            live=live,
            history=history,
        )
        return HTMLResponse(html)

    return router
