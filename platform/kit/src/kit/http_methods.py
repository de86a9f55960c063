"""HTTP methods as HTTP defines them: HEAD wherever GET works, and a 405 that names what does.

FastAPI's API routes serve exactly the methods they declare, and each route answers a 405 for
itself: HEAD on a GET route was a 405, and ``PUT /orders`` said ``Allow: POST`` although
``GET /orders`` exists too. The chassis corrects both for every service:

- :class:`HeadServedAsGet` runs a HEAD request as the GET of the same path, wherever a route
  serves GET. The server (uvicorn) then sends the GET's status and headers, Content-Length
  included, without the body (RFC 9110 9.3.2). HEAD stays out of the OpenAPI documents: it is
  implied by GET.
- :func:`allowed_methods` is what every 405's ``Allow`` header lists (RFC 9110 15.5.6): each
  method some route serves at the path, HEAD wherever GET is, OPTIONS only where a route
  serves it.
"""

from __future__ import annotations

from collections.abc import Iterable

from starlette.routing import BaseRoute, Match
from starlette.types import ASGIApp, Receive, Scope, Send

# The methods a route may serve, in the order an Allow header lists them.
METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE", "CONNECT")


def _probe(scope: Scope, method: str) -> Scope:
    """A request for the same path as ``scope``, with ``method``, to match routes against."""
    return {
        "type": "http",
        "method": method,
        "path": scope["path"],
        "root_path": scope.get("root_path", ""),
        "headers": [],
        "query_string": b"",
    }


def serves(routes: Iterable[BaseRoute], scope: Scope, method: str) -> bool:
    """True when one of ``routes`` serves ``method`` at the path of ``scope``."""
    probe = _probe(scope, method)
    return any(route.matches(probe)[0] is Match.FULL for route in routes)


def allowed_methods(routes: Iterable[BaseRoute], scope: Scope) -> list[str]:
    """The methods served at the path of ``scope``, for an Allow header; HEAD wherever GET is."""
    candidates = list(routes)
    served = {method for method in METHODS if serves(candidates, scope, method)}
    if "GET" in served:
        served.add("HEAD")
    return [method for method in METHODS if method in served]


class HeadServedAsGet:
    """Runs HEAD as the GET of the same path where a route serves GET; the server drops the body.

    The inner application sees a copy of the request's scope with method GET; what routing adds
    to that copy (the matched route, its path parameters) is copied back, so the middlewares
    around this one label the request with its route and still see method HEAD.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "HEAD":
            await self.app(scope, receive, send)
            return
        routes: list[BaseRoute] = scope["app"].router.routes
        if not serves(routes, scope, "GET"):
            await self.app(scope, receive, send)
            return
        as_get = {**scope, "method": "GET"}
        try:
            await self.app(as_get, receive, send)
        finally:
            scope.update({key: value for key, value in as_get.items() if key != "method"})
