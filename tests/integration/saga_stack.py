"""The saga's services as real processes around a real nats-server, on either database."""

from __future__ import annotations

import asyncio
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
from sqlalchemy import text

from devkit.localstack.nats import NatsServer
from devkit.localstack.process import ServiceProcess
from devkit.testing.http import as_user
from kit.db import Database

FINAL = {"paid", "payment_failed"}


def order_body(amount_cents: int = 1200, token: str = "tok_visa") -> dict[str, Any]:
    """A valid POST /orders body for one item of ``amount_cents``."""
    return {
        "items": [{"sku": "book-1", "quantity": 1, "unit_price_cents": amount_cents}],
        "amount_cents": amount_cents,
        "currency": "EUR",
        "payment_token": token,
    }


class SagaStack:
    """NATS, order and payment as real processes; the test may kill and restart any of them.

    With ``nats_url`` the services use the caller's NATS (a cluster, say), which the caller
    starts and stops; otherwise the stack runs a nats-server of its own."""

    def __init__(
        self, directory: Path, new_database: Callable[[str], str], *, nats_url: str | None = None
    ) -> None:
        self._own_nats = NatsServer(directory / "nats") if nats_url is None else None
        nats_url = nats_url or self.nats.url
        self.urls = {"order": new_database("order"), "payment": new_database("payment")}
        self.services = {
            name: ServiceProcess(
                name,
                [sys.executable, "-m", f"{name}_service.main"],
                directory,
                env={"NATS_URL": nats_url, "DATABASE_URL": self.urls[name]},
            )
            for name in ("order", "payment")
        }
        self.user = f"user-{uuid.uuid4().hex[:8]}"
        self.http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10))

    @property
    def nats(self) -> NatsServer:
        """The stack's own nats-server (none when the caller gave its NATS as ``nats_url``)."""
        if self._own_nats is None:
            raise RuntimeError("this stack runs on the caller's NATS (nats_url): use that one")
        return self._own_nats

    @property
    def order(self) -> ServiceProcess:
        return self.services["order"]

    @property
    def payment(self) -> ServiceProcess:
        return self.services["payment"]

    def pids(self) -> list[int]:
        """The running processes of the stack: the services and its own nats-server (a caller's
        NATS is not the stack's)."""
        running = [s.process.pid for s in self.services.values() if s.process is not None]
        if self._own_nats is not None and self._own_nats.pid is not None:
            running.append(self._own_nats.pid)
        return running

    def start(self) -> None:
        if self._own_nats is not None:
            self._own_nats.start()
        for service in self.services.values():
            service.start()
        for service in self.services.values():
            service.wait_until("/readyz", 200)

    async def stop(self) -> None:
        await self.http.close()
        for service in self.services.values():
            service.stop()
        if self._own_nats is not None:
            self._own_nats.stop()

    async def create_order(self, body: dict[str, Any] | None = None) -> str:
        async with self.http.post(
            f"{self.order.base_url}/orders", json=body or order_body(), headers=as_user(self.user)
        ) as response:
            assert response.status == 201, await response.text()
            return str((await response.json())["id"])

    async def order_status(self, order_id: str) -> dict[str, Any]:
        async with self.http.get(
            f"{self.order.base_url}/orders/{order_id}", headers=as_user(self.user)
        ) as response:
            assert response.status == 200, await response.text()
            body: dict[str, Any] = await response.json()
            return body

    async def wait_settled(self, order_ids: list[str], timeout: float) -> dict[str, str]:
        """Poll the order database until every order is final; returns id -> status."""
        deadline = time.monotonic() + timeout
        while True:
            statuses = await self.query(
                "order", "SELECT id, status FROM orders WHERE id IN :ids", ids=order_ids
            )
            settled = {row[0]: row[1] for row in statuses}
            if all(settled.get(i) in FINAL for i in order_ids) or time.monotonic() > deadline:
                return settled
            await asyncio.sleep(0.1)

    async def query(self, service: str, sql: str, **params: Any) -> list[Any]:
        from sqlalchemy import bindparam

        statement = text(sql)
        if "ids" in params:
            statement = statement.bindparams(bindparam("ids", expanding=True))
        db = Database(self.urls[service])
        try:
            async with db.transaction() as session:
                return list((await session.execute(statement, params)).all())
        finally:
            await db.close()
