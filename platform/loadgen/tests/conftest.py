"""Fixtures of the load generator's tests: a small stand-in for the gateway on 127.0.0.1.

It speaks the gateway's API shapes (register, token, orders) on its own thread and event loop,
so synchronous tests (the CLI, LoadInBackground) can use it too. The first path segment of the
target picks its behaviour, e.g. ``{fake_gateway}/slow``:

- ``ok``: answers at once; an order is only found by the token that placed it (else 404);
- ``slow``: the order routes answer after SLOW_SECONDS;
- ``broken``: the order routes answer 503;
- ``flaky-*``: register answers 503 the first FLAKY_REGISTRATIONS times for that segment;
- ``authdown``: register always answers 503.

``GET {fake_gateway}/stats`` tells what it saw: {"registered", "orders", "gets", "posts"}.
"""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import uuid
from collections import Counter
from collections.abc import Iterator

import pytest
from aiohttp import web

SLOW_SECONDS = 0.25
FLAKY_REGISTRATIONS = 2


class FakeGateway:
    """The stand-in's state: users, their orders, and what it answered."""

    def __init__(self) -> None:
        self.tokens: set[str] = set()
        self.owner: dict[str, str] = {}
        self.registrations: Counter[str] = Counter()
        self.seen: Counter[str] = Counter(gets=0, posts=0)

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/stats", self.stats)
        app.router.add_post("/{mode}/api/auth/register", self.register)
        app.router.add_post("/{mode}/api/auth/token", self.token)
        app.router.add_route("*", "/{mode}/api/orders", self.orders)
        app.router.add_get("/{mode}/api/orders/{id}", self.order)
        return app

    async def stats(self, _: web.Request) -> web.Response:
        return web.json_response(
            {
                "registered": sum(self.registrations.values()),
                "orders": len(self.owner),
                **self.seen,
            }
        )

    async def register(self, request: web.Request) -> web.Response:
        mode = request.match_info["mode"]
        self.registrations[mode] += 1
        if mode == "authdown" or (
            mode.startswith("flaky") and self.registrations[mode] <= FLAKY_REGISTRATIONS
        ):
            return web.json_response({"detail": "auth is starting"}, status=503)
        body = await request.json()
        if not body.get("email") or not body.get("password"):
            return web.json_response({"detail": "email and password"}, status=422)
        return web.json_response({"id": uuid.uuid4().hex, "email": body["email"]}, status=201)

    async def token(self, request: web.Request) -> web.Response:
        form = await request.post()
        if form.get("grant_type") != "password" or not form.get("username"):
            return web.json_response({"detail": "password grant only"}, status=400)
        token = uuid.uuid4().hex
        self.tokens.add(token)
        return web.json_response({"access_token": token, "token_type": "bearer", "expires_in": 900})

    async def _caller(self, request: web.Request) -> str | web.Response:
        mode = request.match_info["mode"]
        if mode == "slow":
            await asyncio.sleep(SLOW_SECONDS)
        if mode == "broken":
            return web.json_response({"detail": "order is unavailable"}, status=503)
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        if scheme != "Bearer" or token not in self.tokens:
            return web.json_response({"detail": "no valid bearer token"}, status=401)
        return token

    async def orders(self, request: web.Request) -> web.Response:
        caller = await self._caller(request)
        if isinstance(caller, web.Response):
            return caller
        if request.method == "GET":
            self.seen["gets"] += 1
            mine = [{"id": i} for i, owner in self.owner.items() if owner == caller]
            return web.json_response({"orders": mine[:20]})
        self.seen["posts"] += 1
        body = json.loads(await request.read())
        items = body["items"]
        total = sum(item["quantity"] * item["unit_price_cents"] for item in items)
        if total != body["amount_cents"] or "Idempotency-Key" not in request.headers:
            return web.json_response({"detail": "bad order"}, status=422)
        order_id = uuid.uuid4().hex
        self.owner[order_id] = caller
        return web.json_response({"id": order_id, "status": "pending"}, status=201)

    async def order(self, request: web.Request) -> web.Response:
        caller = await self._caller(request)
        if isinstance(caller, web.Response):
            return caller
        self.seen["gets"] += 1
        order_id = request.match_info["id"]
        if self.owner.get(order_id) != caller:
            return web.json_response({"detail": "no such order"}, status=404)
        return web.json_response({"id": order_id, "status": "paid"})


@pytest.fixture(scope="session")
def fake_gateway() -> Iterator[str]:
    """The stand-in's base URL (http://127.0.0.1:<port>), served from a thread of its own."""
    loop = asyncio.new_event_loop()
    runner = web.AppRunner(FakeGateway().app())
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    port = listener.getsockname()[1]

    async def serve() -> None:
        await runner.setup()
        await web.SockSite(runner, listener).start()

    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    asyncio.run_coroutine_threadsafe(serve(), loop).result(10)
    yield f"http://127.0.0.1:{port}"
    asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(10)
    loop.call_soon_threadsafe(loop.stop)
    thread.join(10)
    loop.close()
