"""The gateway's OpenAPI document: generated from the services' own, and true to the routes."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from devkit.localstack.process import ServiceProcess
from gateway_service.api.forwarded_document import forwarded_document
from gateway_service.api.route_table import PUBLIC, load_forwarded_document, routes_of
from kit.problems import PROBLEM_MEDIA_TYPE, PROBLEM_REF

PROBLEM = {PROBLEM_MEDIA_TYPE: {"schema": {"$ref": PROBLEM_REF}}}


def test_the_forwarded_document_is_generated(repo_root: Path) -> None:
    """forwarded_openapi.json is the output of python -m services.gateway.openapigen."""
    result = subprocess.run(
        [sys.executable, "-m", "services.gateway.openapigen", "--check"],
        cwd=repo_root,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr


async def test_the_served_document_lists_exactly_the_forwarded_routes(
    gateway: ServiceProcess,
) -> None:
    async with (
        aiohttp.ClientSession() as http,
        http.get(gateway.base_url + "/openapi.json") as response,
    ):
        document = await response.json()
    documented = {
        path: {method.upper() for method in item}
        for path, item in document["paths"].items()
        if path.startswith("/api/")
    }
    routes = {route.path: set(route.methods) for route in routes_of(load_forwarded_document())}
    assert documented == routes
    assert documented["/api/orders"] == {"GET", "POST"}
    assert all(methods <= {"GET", "POST"} for methods in documented.values())


def test_each_operation_documents_the_gateways_own_answers() -> None:
    for path, item in load_forwarded_document()["paths"].items():
        for method, operation in item.items():
            responses = operation["responses"]
            for status in ("413", "429", "502", "503", "504"):
                assert responses[status]["content"] == PROBLEM, (method, path, status)
            assert responses["429"]["headers"]["Retry-After"]["required"]
            if (method.upper(), path) in PUBLIC:
                assert "security" not in operation
            else:
                assert operation["security"] == [{"bearerAuth": []}]
                assert responses["401"]["headers"]["WWW-Authenticate"]["required"]


def service_document(paths: dict[str, Any], schemas: dict[str, Any]) -> dict[str, Any]:
    """A service's OpenAPI document with these paths and schemas."""
    return {"openapi": "3.1.0", "paths": paths, "components": {"schemas": schemas}}


def operation(**responses: Any) -> dict[str, Any]:
    """An operation answering these responses (``s404=...`` for status 404)."""
    return {"responses": {status.removeprefix("s"): answer for status, answer in responses.items()}}


def test_a_status_both_answer_keeps_both_reasons() -> None:
    document = service_document(
        {"/orders/{order_id}": {"get": operation(s400={"description": "Bad", "content": PROBLEM})}},
        {},
    )
    forwarded = forwarded_document({"order": document})
    answer = forwarded["paths"]["/api/orders/{order_id}"]["get"]["responses"]["400"]
    assert answer["description"] == "Bad; or from the gateway: " + (
        "the path has '.' or '..' segments: send the resolved path"
    )


def test_what_the_gateway_cannot_merge_stops_the_generator() -> None:
    plain_401 = operation(s401={"description": "No", "content": {"text/plain": {}}})
    with pytest.raises(ValueError, match="another body than the gateway's"):
        forwarded_document({"order": service_document({"/orders": {"get": plain_401}}, {})})
    uses = {"/orders": {"get": operation(s200={"$ref": "#/components/schemas/Thing"})}}
    with pytest.raises(ValueError, match="rename one of the two models"):
        forwarded_document(
            {
                "order": service_document(uses, {"Thing": {"type": "string"}}),
                "payment": service_document(
                    {"/payments": {"get": operation(s200={"$ref": "#/components/schemas/Thing"})}},
                    {"Thing": {"type": "integer"}},
                ),
            }
        )


def test_paths_a_service_does_not_expose_through_the_gateway_stay_out() -> None:
    document = service_document(
        {"/healthz": {"get": operation()}, "/orders": {"get": operation()}}, {}
    )
    assert list(forwarded_document({"order": document})["paths"]) == ["/api/orders"]
