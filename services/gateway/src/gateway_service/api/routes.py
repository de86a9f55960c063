"""The gateway's routes: /api/<service>/... forwarded to each upstream, documented in OpenAPI.

Public: POST /api/auth/register, POST /api/auth/token and GET /api/auth/jwks.json. Every other
route needs ``Authorization: Bearer <access token>``.

The routes are plain Starlette routes, one per path with all its methods: every request is
matched against them (twice, with tracing), so fewer and simpler routes keep the hot path
short. Their OpenAPI operations are written from the same table by :func:`document_routes`.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any

from fastapi import APIRouter, FastAPI, Request, Response

from gateway_service.api.problems import problem_for
from gateway_service.api.proxy import Gateway
from gateway_service.domain.errors import GatewayError
from gateway_service.settings import GatewaySettings
from kit.app import Runtime
from kit.http_middleware import set_route_template
from kit.problems import PROBLEM_MEDIA_TYPE, Problem
from kit.settings import load_settings

METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")
BEARER_SCHEME = "bearerAuth"


@dataclass(frozen=True)
class ProxyRoute:
    """A gateway path and the upstream it forwards to."""

    path: str
    upstream: str
    summary: str


ROUTES = tuple(
    ProxyRoute(prefix + rest, upstream, f"Forwarded to the {upstream} service's {target}{rest}")
    for prefix, upstream, target in (
        ("/api/auth", "auth", "/auth"),
        ("/api/orders", "order", "/orders"),
        ("/api/payments", "payment", "/payments"),
    )
    # Nothing lives at /auth itself, so only its sub-paths are forwarded.
    for rest in (("/{path:path}",) if upstream == "auth" else ("", "/{path:path}"))
)
# (method, path) that need no bearer token: how to get one, and how to check one.
PUBLIC = {
    ("POST", "/api/auth/register"): "Create an account",
    ("POST", "/api/auth/token"): "Get an access token (OAuth2 password grant)",
    ("GET", "/api/auth/jwks.json"): "The public keys that verify access tokens",
}


def install_gateway_settings(app: FastAPI) -> None:
    """Validate GATEWAY_* when the app is built (a bad value stops the start with a message)."""
    app.state.gateway_settings = load_settings(GatewaySettings)


@asynccontextmanager
async def gateway_lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Open the upstream connection pools for the life of the server, and close them after."""
    runtime: Runtime = app.state.runtime
    secret = runtime.settings.identity.shared_secret.get_secret_value().encode()
    gateway = Gateway(app.state.gateway_settings, secret)
    app.state.gateway = gateway
    try:
        yield
    finally:
        await gateway.close()


def _forwarder(route: ProxyRoute) -> Callable[[Request], Awaitable[Response]]:
    async def forward(request: Request) -> Response:
        set_route_template(request.scope, route.path)  # FastAPI names no plain route's template
        gateway: Gateway = request.app.state.gateway
        public = (request.method, request.scope["path"]) in PUBLIC
        try:
            return await gateway.forward(request, gateway.upstreams[route.upstream], public=public)
        except GatewayError as error:
            return problem_for(error)

    return forward


router = APIRouter(lifespan=gateway_lifespan)
for _route in ROUTES:
    router.add_route(
        _route.path, _forwarder(_route), methods=list(METHODS), include_in_schema=False
    )


def document_routes(app: FastAPI) -> None:
    """Add the forwarded routes, their error responses and the bearer scheme to OpenAPI."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = generate()
            paths = schema.setdefault("paths", {})
            for (method, path), summary in PUBLIC.items():
                paths.setdefault(path, {})[method.lower()] = _operation(
                    path, method, "auth", summary, public=True
                )
            for route in ROUTES:
                path = route.path.replace("{path:path}", "{path}")
                for method in METHODS:
                    paths.setdefault(path, {})[method.lower()] = _operation(
                        path, method, route.upstream, route.summary, public=False
                    )
            components = schema.setdefault("components", {})
            components.setdefault("schemas", {})["Problem"] = Problem.model_json_schema()
            components.setdefault("securitySchemes", {})[BEARER_SCHEME] = {
                "type": "http",
                "scheme": "bearer",
                "bearerFormat": "JWT",
                "description": "An access token from POST /api/auth/token.",
            }
        return app.openapi_schema or generate()

    app.openapi = openapi  # type: ignore[method-assign]


_WHEN = {
    400: "the path has '.' or '..' segments (or the upstream refused the request)",
    401: "no valid bearer token (or the upstream refused the caller)",
    413: "the body is larger than the gateway forwards",
    429: "this client sent too many requests",
    502: "the upstream sent a malformed response or dropped the connection",
    503: "the upstream is unavailable, or auth's keys cannot be fetched",
    504: "the upstream did not answer in time",
}
_HEADERS = {
    401: {
        "WWW-Authenticate": {
            "description": "The bearer challenge (RFC 6750).",
            "required": True,
            "schema": {"type": "string"},
        }
    },
    429: {
        "Retry-After": {
            "description": "Seconds until the client may send again.",
            "required": True,
            "schema": {"type": "integer", "minimum": 1},
        }
    },
}


def _operation(
    path: str, method: str, upstream: str, summary: str, *, public: bool
) -> dict[str, Any]:
    statuses = (400, 413, 429, 502, 503, 504) if public else (400, 401, 413, 429, 502, 503, 504)
    responses: dict[str, Any] = {
        "200": {"description": "The upstream service's response, passed through unchanged."}
    }
    for status in statuses:
        responses[str(status)] = {
            "description": f"{HTTPStatus(status).phrase}: {_WHEN[status]}",
            "content": {PROBLEM_MEDIA_TYPE: {"schema": {"$ref": "#/components/schemas/Problem"}}},
            **({"headers": _HEADERS[status]} if status in _HEADERS else {}),
        }
    responses["default"] = {"description": "Any other status of the upstream, unchanged."}
    operation: dict[str, Any] = {
        "tags": [upstream],
        "summary": summary,
        "operationId": re.sub(r"\W+", "_", f"{method}{path}".lower()).strip("_"),
        "responses": responses,
    }
    if path.endswith("{path}"):
        operation["parameters"] = [
            {
                "name": "path",
                "in": "path",
                "required": True,
                "description": "The rest of the path, forwarded as it is.",
                "schema": {"type": "string"},
            }
        ]
    if not public:
        operation["security"] = [{BEARER_SCHEME: []}]
    return operation
