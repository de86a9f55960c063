"""What the gateway forwards: each path under /api, the service behind it and its methods.

The table is read from ``forwarded_openapi.json``, the gateway's OpenAPI document of the
operations it forwards. That file is generated from the services' own documents
(``python -m services.gateway.openapigen``; a test fails when it is stale), so the gateway
forwards exactly what it documents and each service serves: any other method on a forwarded
path is the gateway's own 405, any other path its own 404. The gateway never imports a service.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

Document = dict[str, Any]

API_PREFIX = "/api"
# Each service whose API the gateway forwards, and where that API lives on the service:
# /api/orders/{order_id} is the order service's /orders/{order_id}.
FORWARDED_PREFIXES = {"auth": "/auth", "order": "/orders", "payment": "/payments"}
# (method, path) that need no bearer token: how to get one, and how to check one.
PUBLIC = frozenset(
    {
        ("POST", "/api/auth/register"),
        ("POST", "/api/auth/token"),
        ("GET", "/api/auth/jwks.json"),
    }
)
HTTP_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
FORWARDED_DOCUMENT = Path(__file__).with_name("forwarded_openapi.json")


@dataclass(frozen=True)
class ProxyRoute:
    """A gateway path (a template, as in OpenAPI), the service it forwards to, its methods."""

    path: str
    upstream: str
    methods: tuple[str, ...]


def upstream_of(service_path: str) -> str | None:
    """The service whose API holds ``service_path`` (a path on that service), if the gateway
    forwards it."""
    for upstream, prefix in FORWARDED_PREFIXES.items():
        if service_path == prefix or service_path.startswith(prefix + "/"):
            return upstream
    return None


def routes_of(document: Document) -> tuple[ProxyRoute, ...]:
    """The routes of a forwarded document: one per path, with the methods it documents."""
    routes = []
    for path, item in document["paths"].items():
        upstream = upstream_of(path.removeprefix(API_PREFIX))
        if not path.startswith(API_PREFIX + "/") or upstream is None:
            raise ValueError(f"{path}: not under {API_PREFIX} or no service forwards it")
        methods = tuple(method.upper() for method in item if method in HTTP_METHODS)
        routes.append(ProxyRoute(path, upstream, methods))
    return tuple(routes)


def load_forwarded_document() -> Document:
    """The committed document of the forwarded operations."""
    document: Document = json.loads(FORWARDED_DOCUMENT.read_text())
    return document
