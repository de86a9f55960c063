"""The methods the gateway forwards: exactly what each service serves, HEAD wherever GET is.

The echo upstream (order and payment here) answers any method on any path, so whatever it is
not asked for shows that the gateway answered itself.
"""

from __future__ import annotations

from collections.abc import Callable

import aiohttp
import pytest

from devkit.localstack.process import ServiceProcess


def bearer(token: str) -> dict[str, str]:
    """The Authorization header for ``token``."""
    return {"Authorization": f"Bearer {token}"}


@pytest.mark.parametrize(
    ("method", "path", "allow"),
    [
        ("PUT", "/api/orders", "GET, HEAD, POST"),
        ("DELETE", "/api/orders/o-1", "GET, HEAD"),
        ("POST", "/api/payments/p-1", "GET, HEAD"),
        ("PATCH", "/api/auth/me", "GET, HEAD"),
        ("GET", "/api/auth/register", "POST"),
        ("OPTIONS", "/api/auth/token", "POST"),
    ],
)
async def test_a_method_no_service_serves_is_the_gateways_own_405(
    gateway: ServiceProcess, mint: Callable[..., str], method: str, path: str, allow: str
) -> None:
    async with (
        aiohttp.ClientSession(headers=bearer(mint())) as http,
        http.request(method, gateway.base_url + path, json={"x": 1}) as response,
    ):
        assert response.status == 405
        assert response.headers["Allow"] == allow
        assert response.content_type == "application/problem+json"
        assert (await response.json())["detail"].endswith(f"it serves {allow}")


async def test_a_path_no_service_serves_is_the_gateways_own_404(
    gateway: ServiceProcess, mint: Callable[..., str]
) -> None:
    async with aiohttp.ClientSession(headers=bearer(mint())) as http:
        for path in ("/api/payments", "/api/orders/o-1/items", "/api/auth/admin", "/api"):
            async with http.get(gateway.base_url + path) as response:
                assert response.status == 404, path
                assert "/openapi.json" in (await response.json())["detail"]


async def test_head_is_the_get_without_its_body_public_or_not(
    gateway: ServiceProcess, mint: Callable[..., str]
) -> None:
    async with aiohttp.ClientSession(gateway.base_url) as http:
        async with http.get("/api/auth/jwks.json") as response:
            got = response.status, response.headers
            body = await response.read()
        async with http.head("/api/auth/jwks.json") as response:
            assert (response.status, await response.read()) == (200, b"")
            for name in ("Content-Type", "Content-Length", "Cache-Control"):
                assert response.headers[name] == got[1][name]
        assert int(got[1]["Content-Length"]) == len(body)
        async with http.head("/api/orders/o-1") as response:
            assert response.status == 401  # HEAD needs a token wherever GET does
            assert response.headers["WWW-Authenticate"].startswith("Bearer")
        async with http.head("/api/orders/o-1", headers=bearer(mint())) as response:
            assert response.status == 200
            assert int(response.headers["Content-Length"]) > 0
            assert await response.read() == b""
