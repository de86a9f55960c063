"""kit.db on real databases: inline SQLite with its checkpoints, PostgreSQL across a restart."""

import asyncio
import threading
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import (
    Column,
    Connection,
    Integer,
    MetaData,
    Table,
    Text,
    func,
    insert,
    select,
    text,
)

from devkit.testing.postgres import PostgresServer
from kit.db import Database

metadata = MetaData()
notes = Table("notes", metadata, Column("id", Integer, primary_key=True), Column("body", Text))


async def count_notes(db: Database) -> int:
    async with db.transaction() as session:
        return int(await session.scalar(select(func.count()).select_from(notes)) or 0)


@pytest.fixture
async def sqlite_db(tmp_path: Path) -> AsyncIterator[Database]:
    db = Database(f"sqlite:///{tmp_path}/notes.db")
    await db.create_tables(metadata)
    yield db
    await db.close()


async def test_sqlite_runs_on_the_event_loop_thread_without_a_worker_thread(
    tmp_path: Path,
) -> None:
    threads = threading.active_count()
    db = Database(f"sqlite:///{tmp_path}/inline.db")
    await db.create_tables(metadata)
    async with db.transaction() as session:
        await session.execute(insert(notes).values(body="hello"))
    assert threading.active_count() == threads
    assert await count_notes(db) == 1
    await db.close()


async def test_sqlite_keeps_the_write_ahead_log_bounded(
    sqlite_db: Database, tmp_path: Path
) -> None:
    body = "x" * 4000  # about a page per row
    for _ in range(2000):
        async with sqlite_db.transaction() as session:
            await session.execute(insert(notes).values(body=body))
    # Without checkpoints the log would hold every page written (over 8 MB here).
    assert (tmp_path / "notes.db-wal").stat().st_size < 6 * 1024 * 1024
    assert await count_notes(sqlite_db) == 2000


def test_sqlite_urls_with_options_are_refused_with_the_fix() -> None:
    with pytest.raises(ValueError, match="give a plain file path"):
        Database("sqlite:///data/x.db?mode=ro")


async def test_a_postgresql_restart_does_not_fail_the_next_transaction() -> None:
    server = PostgresServer()
    await asyncio.to_thread(server.start)
    try:
        db = Database(server.create_database())
        await db.create_tables(metadata)
        async with db.transaction() as session:
            await session.execute(insert(notes).values(body="before"))

        await asyncio.to_thread(server.restart)
        await asyncio.sleep(0.2)  # the closed sockets reach the event loop

        async with db.transaction() as session:  # a pooled connection was closed by the server
            await session.execute(insert(notes).values(body="after"))
        assert await count_notes(db) == 2
        await db.close()
    finally:
        await asyncio.to_thread(server.stop)


async def test_warm_up_opens_the_whole_pool_before_the_first_request() -> None:
    server = PostgresServer()
    await asyncio.to_thread(server.start)
    try:
        url = server.create_database()
        db = Database(url, pool_size=3)
        await db.warm_up()
        # Three server sessions of this database, each idle in the pool, before any request.
        assert db.engine.pool.checkedin() == 3  # type: ignore[attr-defined]
        async with db.engine.connect() as conn:
            sessions = await conn.scalar(
                text("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()")
            )
        assert sessions == 3
        await db.close()
    finally:
        await asyncio.to_thread(server.stop)


async def test_warm_up_of_sqlite_opens_its_one_connection(sqlite_db: Database) -> None:
    await sqlite_db.warm_up()
    assert sqlite_db.engine.pool.checkedin() == 1  # type: ignore[attr-defined]


async def test_a_core_transaction_commits_and_runs_the_commit_hooks(sqlite_db: Database) -> None:
    seen: list[list[str]] = []
    sqlite_db.on_commit("test_notes", seen.append)
    async with sqlite_db.core_transaction() as connection:
        await connection.execute(insert(notes).values(body="kept"))
        connection.info.setdefault("test_notes", []).append("kept")
    assert seen == [["kept"]]
    assert await count_notes(sqlite_db) == 1


async def test_a_rolled_back_core_transaction_leaves_nothing_for_the_next_one(
    sqlite_db: Database,
) -> None:
    seen: list[list[str]] = []
    sqlite_db.on_commit("test_notes", seen.append)

    async def change_my_mind() -> None:
        async with sqlite_db.core_transaction() as connection:
            await connection.execute(insert(notes).values(body="dropped"))
            connection.info.setdefault("test_notes", []).append("dropped")
            raise RuntimeError("changed my mind")

    with pytest.raises(RuntimeError, match="changed my mind"):
        await change_my_mind()
    # SQLite's pool has one connection: the next transaction gets the same one, and its info.
    async with sqlite_db.core_transaction() as connection:
        await connection.execute(insert(notes).values(body="kept"))
        connection.info.setdefault("test_notes", []).append("kept")
    assert seen == [["kept"]]
    assert await count_notes(sqlite_db) == 1


async def test_run_in_transaction_commits_returns_and_runs_the_commit_hooks(
    sqlite_db: Database,
) -> None:
    seen: list[list[str]] = []
    sqlite_db.on_commit("test_notes", seen.append)

    def add_note(connection: Connection) -> int:
        connection.execute(insert(notes).values(body="kept"))
        connection.info.setdefault("test_notes", []).append("kept")
        return int(connection.scalar(select(func.count()).select_from(notes)) or 0)

    assert await sqlite_db.run_in_transaction(add_note) == 1
    assert seen == [["kept"]]
    assert await count_notes(sqlite_db) == 1


async def test_run_in_transaction_rolls_back_what_raised_and_runs_no_hook(
    sqlite_db: Database,
) -> None:
    seen: list[list[str]] = []
    sqlite_db.on_commit("test_notes", seen.append)

    def change_my_mind(connection: Connection) -> None:
        connection.execute(insert(notes).values(body="dropped"))
        connection.info.setdefault("test_notes", []).append("dropped")
        raise RuntimeError("changed my mind")

    def add_note(connection: Connection) -> None:
        connection.execute(insert(notes).values(body="kept"))
        connection.info.setdefault("test_notes", []).append("kept")

    with pytest.raises(RuntimeError, match="changed my mind"):
        await sqlite_db.run_in_transaction(change_my_mind)
    await sqlite_db.run_in_transaction(add_note)  # the same pooled connection, and its info
    assert seen == [["kept"]]
    assert await count_notes(sqlite_db) == 1


async def test_run_in_transaction_waits_for_the_connection_another_transaction_holds(
    sqlite_db: Database,
) -> None:
    # SQLite's pool has one connection: a transaction that awaits while holding it makes the
    # next one wait in the pool, from inside its greenlet, instead of failing or blocking.
    release = asyncio.Event()

    async def hold() -> None:
        async with sqlite_db.core_transaction() as connection:
            await connection.execute(insert(notes).values(body="first"))
            await release.wait()

    holder = asyncio.create_task(hold())
    await asyncio.sleep(0.05)
    second = asyncio.create_task(
        sqlite_db.run_in_transaction(
            lambda connection: connection.execute(insert(notes).values(body="second"))
        )
    )
    await asyncio.sleep(0.05)
    assert not second.done()
    release.set()
    await asyncio.gather(holder, second)
    async with sqlite_db.transaction() as session:
        bodies = (await session.execute(select(notes.c.body).order_by(notes.c.id))).scalars()
        assert list(bodies) == ["first", "second"]
