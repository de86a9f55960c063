"""A tiny upstream for the gateway's tests: it answers with what it received.

Run as a script (``python gateway_echo_upstream.py``) on SERVICE_PORT; it is a real service on
the chassis, standing in for order and payment, not a mock of anything the platform runs.
"""

import asyncio
from typing import Annotated

from fastapi import APIRouter, Header, Path, Request, Response
from fastapi.responses import JSONResponse

from kit.app import ServiceSpec
from kit.serve import serve

router = APIRouter()


@router.get("/orders/slow")
async def slow(seconds: float) -> dict[str, float]:
    """Answer after ``seconds``."""
    await asyncio.sleep(seconds)
    return {"slept": seconds}


@router.get("/orders/status-{status}")
async def status(
    status: Annotated[int, Path(ge=400, le=599)],
    allow_5xx: Annotated[str | None, Header(alias="X-Test-Allow-5xx")] = None,
) -> Response:
    """Answer with the error ``status`` and a problem body of the upstream's own.

    A 5xx only when the test asks for it by header, so fuzzing the gateway never gets one.
    """
    if status >= 500 and allow_5xx != "yes":
        status = 422
    return JSONResponse(
        {"title": "chosen by the test", "status": status, "from": "upstream"},
        status_code=status,
        media_type="application/problem+json",
        headers={"X-Upstream": "echo", "Set-Cookie": "upstream=1; Path=/"},
    )


@router.api_route("/{path:path}", methods=["GET", "POST", "PUT", "PATCH", "DELETE"])
async def echo(request: Request) -> dict[str, object]:
    """Everything the request carried: method, path, query, headers (all values), body."""
    headers: dict[str, list[str]] = {}
    for name, value in request.headers.items():
        headers.setdefault(name, []).append(value)
    return {
        "method": request.method,
        "path": request.scope["raw_path"].decode(),
        "query": request.scope["query_string"].decode(),
        "headers": headers,
        "body": (await request.body()).decode(errors="replace"),
    }


if __name__ == "__main__":
    serve(ServiceSpec(name="echo", routers=[router], uses_nats=False))
