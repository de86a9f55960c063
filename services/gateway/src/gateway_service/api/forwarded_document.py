"""The gateway's OpenAPI document of what it forwards, made from the services' own documents.

Each operation a service serves under a forwarded prefix (``route_table.FORWARDED_PREFIXES``)
appears under /api with the service's own parameters, request body, responses and schemas, and
with what the gateway itself answers before or instead of the service: 401 without a valid
bearer token (the public operations aside), 429 over the rate limit, 413 for a body larger than
it forwards, 400 for '.' or '..' path segments, 502, 503 and 504 when the service fails.

The generator (``python -m services.gateway.openapigen``) runs this over the services' documents
and commits the result; the gateway only reads that file.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator, Mapping
from http import HTTPStatus
from typing import Any

from gateway_service.api.route_table import API_PREFIX, HTTP_METHODS, PUBLIC, upstream_of
from kit.problems import PROBLEM_MEDIA_TYPE, PROBLEM_REF, Problem

Document = dict[str, Any]

BEARER_SCHEME = "bearerAuth"
BEARER = {
    "type": "http",
    "scheme": "bearer",
    "bearerFormat": "JWT",
    "description": "An access token from POST /api/auth/token.",
}
# What the gateway answers itself, and when.
GATEWAY_ANSWERS = {
    400: "the path has '.' or '..' segments: send the resolved path",
    401: "no valid bearer token",
    413: "the body is larger than the gateway forwards",
    429: "this client sent too many requests",
    502: "the service sent a malformed response or dropped the connection",
    503: "the service is unavailable, or auth's keys cannot be fetched",
    504: "the service did not answer in time",
}
_HEADERS: dict[int, Document] = {
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
_SCHEMA_REF = "#/components/schemas/"


def forwarded_document(services: Mapping[str, Document]) -> Document:
    """The document of every operation the gateway forwards, from each service's document."""
    paths: Document = {}
    # The gateway's own answers are problem details too.
    schemas: Document = {"Problem": Problem.model_json_schema()}
    for service, document in services.items():
        forwarded = {
            path: item for path, item in document["paths"].items() if upstream_of(path) == service
        }
        for path, item in forwarded.items():
            gateway_path = API_PREFIX + path
            paths[gateway_path] = {
                method: gateway_operation(operation, method, gateway_path)
                for method, operation in item.items()
                if method in HTTP_METHODS
            }
        _adopt_schemas(service, document, forwarded, schemas)
    return {
        "openapi": next(iter(services.values()))["openapi"],
        "info": {
            "title": "The operations the gateway forwards",
            "version": "generated",
            "description": (
                "Generated from the services' own OpenAPI documents by "
                "python -m services.gateway.openapigen; do not edit."
            ),
        },
        "paths": paths,
        "components": {
            "schemas": dict(sorted(schemas.items())),
            "securitySchemes": {BEARER_SCHEME: BEARER},
        },
    }


def gateway_operation(operation: Document, method: str, gateway_path: str) -> Document:
    """A service's operation as the gateway serves it: its security and its own answers."""
    result = copy.deepcopy(operation)
    result.pop("security", None)
    public = (method.upper(), gateway_path) in PUBLIC
    statuses = [413, 429, 502, 503, 504]
    if not public:
        result["security"] = [{BEARER_SCHEME: []}]
        statuses.append(401)
    if "{" in gateway_path:
        statuses.append(400)
    responses = result.setdefault("responses", {})
    for status in sorted(statuses):
        _add_answer(responses, status, gateway_path)
    result["responses"] = dict(sorted(responses.items()))
    return result


def _add_answer(responses: Document, status: int, path: str) -> None:
    """Document the gateway's ``status``; where the service answers it too, both reasons."""
    when = GATEWAY_ANSWERS[status]
    answer: Document = {
        "description": f"{HTTPStatus(status).phrase}: {when}",
        "content": {PROBLEM_MEDIA_TYPE: {"schema": {"$ref": PROBLEM_REF}}},
    }
    if status in _HEADERS:
        answer["headers"] = copy.deepcopy(_HEADERS[status])
    own = responses.get(str(status))
    if own is None:
        responses[str(status)] = answer
        return
    if own.get("content") != answer["content"]:
        raise ValueError(
            f"{path}: the service answers {status} with another body than the gateway's "
            "problem details; document it as a problem (kit.problems.problem_responses)"
        )
    own["description"] = f"{own['description']}; or from the gateway: {when}"
    headers = own.setdefault("headers", {})
    for name, header in answer.get("headers", {}).items():
        # Required only when both answers carry it.
        headers.setdefault(name, {**header, "required": False})


def _adopt_schemas(
    service: str, document: Document, forwarded: Document, schemas: Document
) -> None:
    """Copy the schemas the forwarded operations use into ``schemas`` (shared when equal)."""
    available: Document = document.get("components", {}).get("schemas", {})
    needed: list[str] = []
    todo = list(_schema_names(forwarded))
    while todo:
        name = todo.pop()
        if name in needed:
            continue
        if name not in available:
            if name in schemas:
                continue  # one the gateway holds already, such as Problem
            raise ValueError(f"the {service} service refers to a schema {name!r} it lacks")
        needed.append(name)
        todo.extend(_schema_names(available[name]))
    for name in sorted(needed):
        if name in schemas and schemas[name] != available[name]:
            raise ValueError(
                f"the {service} service's schema {name!r} differs from another service's schema "
                "of that name: rename one of the two models"
            )
        schemas[name] = copy.deepcopy(available[name])


def _schema_names(node: object) -> Iterator[str]:
    """The component schemas ``node`` refers to, at any depth."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str) and value.startswith(_SCHEMA_REF):
                yield value.removeprefix(_SCHEMA_REF)
            else:
                yield from _schema_names(value)
    elif isinstance(node, list):
        for item in node:
            yield from _schema_names(item)
