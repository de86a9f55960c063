"""Liveness (/healthz: the process works) and readiness (/readyz: its dependencies answer)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel

ReadinessCheck = Callable[[], Awaitable[None]]
CHECK_TIMEOUT_SECONDS = 2.0


class HealthStatus(BaseModel):
    """Body of /healthz and /readyz."""

    status: str
    checks: dict[str, str] = {}


async def _run_check(check: ReadinessCheck) -> str:
    try:
        await asyncio.wait_for(check(), CHECK_TIMEOUT_SECONDS)
    except TimeoutError:
        return f"timed out after {CHECK_TIMEOUT_SECONDS:g}s"
    except Exception as exc:
        return f"failing: {exc}"
    return "ok"


def health_router(checks: Callable[[Request], Mapping[str, ReadinessCheck]]) -> APIRouter:
    """Routes for /healthz and /readyz; ``checks`` names the readiness checks of a request's app."""
    router = APIRouter(tags=["health"])

    @router.get("/healthz", response_model=HealthStatus, summary="Liveness")
    async def healthz() -> HealthStatus:
        return HealthStatus(status="ok")

    @router.get(
        "/readyz",
        response_model=HealthStatus,
        summary="Readiness",
        responses={503: {"model": HealthStatus, "description": "A dependency is not ready"}},
    )
    async def readyz(request: Request) -> JSONResponse:
        named = checks(request)
        results = await asyncio.gather(*(_run_check(check) for check in named.values()))
        outcome = dict(zip(named, results, strict=True))
        ready = all(result == "ok" for result in results)
        body = HealthStatus(status="ready" if ready else "unavailable", checks=outcome)
        return JSONResponse(body.model_dump(), status_code=200 if ready else 503)

    return router
