"""A request that meets a dependency's outage answers 503 with Retry-After (a client's cue to
retry), anything else unexpected a 500; both as problem details."""

from __future__ import annotations

import httpx
from fastapi import FastAPI
from sqlalchemy import select
from sqlalchemy.ext.asyncio import create_async_engine

from devkit.localstack.ports import free_port
from kit.events.outages import is_outage
from kit.problems import install_problem_handlers


def app_with(handler_error: Exception | None = None) -> FastAPI:
    app = FastAPI()
    install_problem_handlers(app)
    down = create_async_engine(f"postgresql+asyncpg://u:p@127.0.0.1:{free_port()}/db")

    @app.get("/orders")
    async def orders() -> dict[str, str]:
        if handler_error is not None:
            raise handler_error
        async with down.connect() as connection:  # nothing listens: refused
            await connection.execute(select(1))
        return {}

    return app


async def call(app: FastAPI) -> httpx.Response:
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        return await client.get("/orders")


async def test_a_database_that_refuses_connections_answers_503_with_retry_after() -> None:
    response = await call(app_with())
    assert response.status_code == 503
    assert response.headers["retry-after"] == "1"
    assert response.headers["content-type"] == "application/problem+json"
    assert "retry shortly" in response.json()["detail"]


async def test_a_bug_answers_a_500_problem() -> None:
    response = await call(app_with(RuntimeError("a bug")))
    assert response.status_code == 500
    assert response.headers["content-type"] == "application/problem+json"
    assert "a bug" not in response.text  # no internals leak


def test_an_outage_is_recognised_through_the_errors_it_was_raised_from() -> None:
    wrapped = ValueError("wrapped")
    wrapped.__cause__ = ConnectionResetError("peer went away")
    assert is_outage(wrapped)
    assert not is_outage(ValueError("bad input"))
    assert not is_outage(FileNotFoundError("a missing file is no outage"))
