"""The gateway's routes: /api/<service>/... forwarded to each service, documented in OpenAPI.

Public: POST /api/auth/register, POST /api/auth/token and GET /api/auth/jwks.json. Every other
route needs ``Authorization: Bearer <access token>``.

The routes are plain Starlette routes, one per forwarded path with exactly the methods the
service serves there (``route_table``): another method is the gateway's own 405, with the
path's methods in Allow, and never reaches the service; a HEAD arrives as the GET it stands for
(``kit.http_methods``), so the service's answer has the GET's headers. Every request is matched
against the routes (twice, with tracing), so few and simple routes keep the hot path short.
Their OpenAPI operations come from the same document (:func:`document_routes`).
"""

from __future__ import annotations

import copy
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

from fastapi import APIRouter, FastAPI, Request, Response

from gateway_service.api.problems import problem_for
from gateway_service.api.proxy import Gateway
from gateway_service.api.route_table import (
    PUBLIC,
    ProxyRoute,
    load_forwarded_document,
    routes_of,
)
from gateway_service.domain.errors import GatewayError
from gateway_service.settings import GatewaySettings
from kit.app import Runtime
from kit.http_middleware import set_route_template
from kit.settings import load_settings

FORWARDED = load_forwarded_document()
ROUTES = routes_of(FORWARDED)


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
        _route.path, _forwarder(_route), methods=list(_route.methods), include_in_schema=False
    )


def document_routes(app: FastAPI) -> None:
    """Add the forwarded operations, their schemas and the bearer scheme to the app's OpenAPI."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            document = generate()
            document.setdefault("paths", {}).update(copy.deepcopy(FORWARDED["paths"]))
            components = document.setdefault("components", {})
            for kind, entries in FORWARDED["components"].items():
                merged = components.setdefault(kind, {})
                for name, entry in entries.items():
                    if merged.setdefault(name, entry) != entry:
                        raise ValueError(
                            f"the gateway's own {kind} {name!r} differs from the "
                            "forwarded one: rename one of them"
                        )
            app.openapi_schema = document
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
