"""One pure-ASGI middleware for every request: a request id and Prometheus metrics.

A request its client ended is counted apart from the server's answers: 499 (nginx's "client
closed request") when the client hung up before its response, 408 when the server gave up on a
body that came too slowly (kit.edge_limits). Neither is a 5xx, so neither counts as an error of
the service in a canary analysis or an SLO; their duration, the client's doing, is not observed.
"""

from __future__ import annotations

import logging
import re
import time
import uuid

from starlette.requests import ClientDisconnect
from starlette.routing import BaseRoute
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from kit.logs import request_id_var
from kit.metrics import HTTP_LATENCY, HTTP_REQUESTS

log = logging.getLogger(__name__)

REQUEST_ID_HEADER = "x-request-id"
_SAFE_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
UNMATCHED_ROUTE = "<unmatched>"
CLIENT_CLOSED_REQUEST = 499
# Scope keys. The server's protocol (kit.edge_limits) sets CONNECTION_ENDING to the status that
# ended a request on the client's side while the application ran (499 hung up, 408 too slow,
# 400 a malformed body); a plain Starlette route, which FastAPI's router does not put in the
# scope, names its template with set_route_template.
CONNECTION_ENDING = "kit.connection_ending"
ROUTE_TEMPLATE = "kit.route_template"


def set_route_template(scope: Scope, template: str) -> None:
    """Count the request under ``template`` (e.g. ``/api/orders/{path:path}``): for endpoints
    of plain Starlette routes, whose route FastAPI's router leaves out of the scope."""
    scope[ROUTE_TEMPLATE] = template


def _incoming_request_id(scope: Scope) -> str | None:
    for name, value in scope.get("headers", ()):
        if name == REQUEST_ID_HEADER.encode():
            candidate = value.decode("latin-1")
            return candidate if _SAFE_REQUEST_ID.match(candidate) else None
    return None


def _route_template(scope: Scope) -> str:
    template = scope.get(ROUTE_TEMPLATE)
    if template is not None:
        return str(template)
    route = scope.get("route")
    if isinstance(route, BaseRoute) and hasattr(route, "path"):
        return str(route.path)
    return UNMATCHED_ROUTE


class RequestObservabilityMiddleware:
    """Tags each request with an id (kept from a trusted caller when well formed) and counts it.

    Metrics are labelled with the route template, never the raw path, so ids in URLs do not
    explode the number of series.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = _incoming_request_id(scope) or uuid.uuid4().hex
        token = request_id_var.set(request_id)
        status = 500
        started = time.perf_counter()

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message.setdefault("headers", [])
                message["headers"] = [
                    *message["headers"],
                    (REQUEST_ID_HEADER.encode(), request_id.encode()),
                ]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except ClientDisconnect:
            # The body's read found the client gone: no error of the service, nothing to answer.
            status = CLIENT_CLOSED_REQUEST
        finally:
            route = _route_template(scope)
            method = scope["method"]
            ending = scope.get(CONNECTION_ENDING)
            if ending is not None:
                status = ending
            HTTP_REQUESTS.labels(method, route, str(status)).inc()
            if status == CLIENT_CLOSED_REQUEST:
                log.info(
                    "the client closed the connection before its response",
                    extra={"method": method, "route": route, "status": status},
                )
            elif ending is None:
                HTTP_LATENCY.labels(method, route).observe(time.perf_counter() - started)
            request_id_var.reset(token)
