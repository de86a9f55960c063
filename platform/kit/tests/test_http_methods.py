"""HEAD wherever GET works, and a 405 that lists the path's methods, in a real uvicorn process."""

from __future__ import annotations

import json
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest

from devkit.localstack.process import ServiceProcess

SERVICE = Path(__file__).with_name("methods_service.py")


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServiceProcess]:
    """The methods service, started once for the module."""
    process = ServiceProcess(
        "methods", [sys.executable, str(SERVICE)], tmp_path_factory.mktemp("methods")
    )
    process.start()
    yield process
    process.stop()


@pytest.mark.parametrize("path", ["/items", "/items/7", "/healthz", "/openapi.json"])
async def test_head_answers_the_gets_status_and_headers_without_a_body(
    service: ServiceProcess, path: str
) -> None:
    async with aiohttp.ClientSession(service.base_url) as http:
        async with http.get(path) as response:
            got = response.status, response.headers
            body = await response.read()
        async with http.head(path) as response:
            head = response.status, response.headers
            assert await response.read() == b""
    assert head[0] == got[0] == 200
    for name in ("Content-Type", "Content-Length"):
        assert head[1][name] == got[1][name]
    assert int(head[1]["Content-Length"]) == len(body)


@pytest.mark.parametrize(
    ("method", "path", "allow"),
    [
        ("PUT", "/items", "GET, HEAD, POST"),  # two routes share the path: both count
        ("DELETE", "/items/7", "GET, HEAD"),
        ("OPTIONS", "/items", "GET, HEAD, POST"),  # OPTIONS only where a route serves it
        ("TRACE", "/items/7", "GET, HEAD"),
        ("POST", "/healthz", "GET, HEAD"),
        ("HEAD", "/nothing-here", None),  # no route at all: 404
    ],
)
async def test_a_method_not_served_is_405_with_the_paths_methods(
    service: ServiceProcess, method: str, path: str, allow: str | None
) -> None:
    async with (
        aiohttp.ClientSession(service.base_url) as http,
        http.request(method, path) as response,
    ):
        assert response.status == (404 if allow is None else 405)
        assert response.headers.get("Allow") == allow
        if method != "HEAD":
            assert response.content_type == "application/problem+json"
            problem = await response.json()
    if allow is not None:
        assert problem["detail"] == f"{method} is not served at this path; it serves {allow}"


def test_head_is_counted_as_head_under_the_routes_template(service: ServiceProcess) -> None:
    request = urllib.request.Request(service.base_url + "/items/9", method="HEAD")
    with urllib.request.urlopen(request) as response:
        assert response.status == 200
    with urllib.request.urlopen(service.base_url + "/metrics") as response:
        metrics = response.read().decode()
    assert 'http_requests_total{method="HEAD",route="/items/{item_id}",status="200"}' in metrics


def test_head_stays_out_of_the_openapi_document(service: ServiceProcess) -> None:
    with urllib.request.urlopen(service.base_url + "/openapi.json") as response:
        document = response.read().decode()
    assert '"head"' not in document


def test_a_path_nothing_serves_is_a_404_that_says_where_to_look(service: ServiceProcess) -> None:
    request = urllib.request.Request(service.base_url + "/nothing-here")
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request)
    assert refused.value.code == 404
    problem = json.loads(refused.value.read())
    assert problem["detail"] == "nothing is served at this path; /openapi.json lists what is"
