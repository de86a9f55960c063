"""Errors as RFC 9457 problem details (``application/problem+json``)."""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException

from kit.events.outages import is_outage
from kit.http_methods import allowed_methods

PROBLEM_MEDIA_TYPE = "application/problem+json"
# Every service's document holds the schema under this name (kit.api_document).
PROBLEM_REF = "#/components/schemas/Problem"
CHALLENGE_HEADER = {
    "WWW-Authenticate": {
        "description": "How to authenticate (RFC 9110 11.6.1).",
        "required": True,
        "schema": {"type": "string"},
    }
}


class Problem(BaseModel):
    """The body of every error response."""

    type: str = "about:blank"
    title: str
    status: int
    detail: str | None = None
    errors: list[dict[str, Any]] | None = None


def problem_response(
    status: int, detail: str | None = None, *, headers: dict[str, str] | None = None, **extra: Any
) -> JSONResponse:
    """Build a problem+json response with the standard title for ``status``."""
    body = Problem(status=status, title=HTTPStatus(status).phrase, detail=detail, **extra)
    return JSONResponse(
        body.model_dump(exclude_none=True),
        status_code=status,
        media_type=PROBLEM_MEDIA_TYPE,
        headers=headers,
    )


def problem_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses=`` entries documenting the problem details a route can return (a
    401 with its challenge: RFC 9110 wants one on every 401)."""
    return {
        status: {
            "description": HTTPStatus(status).phrase,
            "content": {PROBLEM_MEDIA_TYPE: {"schema": {"$ref": PROBLEM_REF}}},
            **({"headers": CHALLENGE_HEADER} if status == 401 else {}),
        }
        for status in statuses
    }


def method_not_allowed(request: Request) -> JSONResponse:
    """The 405 for ``request``: its Allow header lists every method served at the path.

    Each route raises its own 405 naming only its own methods; several routes may share a path
    (``GET /orders`` and ``POST /orders``), so the answer is made from all of them.
    """
    allow = allowed_methods(request.app.router.routes, request.scope)
    return problem_response(
        405,
        f"{request.method} is not served at this path; it serves {', '.join(allow)}",
        headers={"Allow": ", ".join(allow)},
    )


OUTAGE_RETRY_AFTER_SECONDS = 1


def install_problem_handlers(app: FastAPI) -> None:
    """Map HTTP and validation errors to problem details once, for the whole app."""

    async def on_http_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, HTTPException)
        if exc.status_code == 405:
            return method_not_allowed(request)
        detail = exc.detail if isinstance(exc.detail, str) else None
        if exc.status_code == 404 and detail == HTTPStatus.NOT_FOUND.phrase:
            # No route at all (a route's own 404 says what it did not find).
            detail = "nothing is served at this path; /openapi.json lists what is"
        headers = dict(exc.headers) if exc.headers else None
        return problem_response(exc.status_code, detail, headers=headers)

    async def on_validation_error(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        errors = [
            {"loc": list(err.get("loc", ())), "msg": err.get("msg", ""), "type": err.get("type")}
            for err in exc.errors()
        ]
        return problem_response(422, "The request is not valid; see errors.", errors=errors)

    async def on_unhandled(_: Request, exc: Exception) -> JSONResponse:
        # Starlette still logs the exception after this answer.
        if is_outage(exc):
            return problem_response(
                503,
                "A dependency of this service (its database or NATS) is unavailable for a "
                "moment; retry shortly (with the same Idempotency-Key for a POST).",
                headers={"Retry-After": str(OUTAGE_RETRY_AFTER_SECONDS)},
            )
        return problem_response(500, "The service failed on this request; its logs name it.")

    app.add_exception_handler(HTTPException, on_http_error)
    app.add_exception_handler(RequestValidationError, on_validation_error)
    app.add_exception_handler(Exception, on_unhandled)
