"""SQLite for the async engine, run on the event loop's own thread instead of a worker thread.

SQLAlchemy's async SQLite dialect drives aiosqlite, which sends every call (cursor, execute,
fetch, commit) to a worker thread and back. For a service's own small WAL-mode file a statement
takes microseconds, so those hops cost far more than the work: measured on the saga, they were a
quarter of each service's CPU and, through GIL hand-offs, most of its latency tail.

``connect_inline`` keeps aiosqlite's interface (so the dialect is unchanged) but runs each call at
once. The trade-off is that a statement blocks the loop while it runs, so the engine keeps to
what is quick: one process per database file, short transactions, and WAL checkpoints (the one
slow part, an fsync) moved to a thread by ``Checkpointer``.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import aiosqlite

log = logging.getLogger(__name__)


class _RunAtOnce:
    """Stands in for aiosqlite's queue to its worker thread: runs each call as it is queued."""

    def put_nowait(self, item: tuple[asyncio.Future[Any] | None, Callable[[], Any]]) -> None:
        future, function = item
        try:
            result = function()
        except BaseException as exc:
            if future is not None and not future.done():
                future.set_exception(exc)
            return
        if future is not None and not future.done():
            future.set_result(result)


class InlineConnection(aiosqlite.Connection):
    """An aiosqlite connection without its worker thread: every call runs on the caller's thread."""

    def __init__(self, connector: Callable[[], sqlite3.Connection]) -> None:
        super().__init__(connector, iter_chunk_size=64)
        self._tx = _RunAtOnce()  # type: ignore[assignment]

    async def _execute(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        if not self._running or self._connection is None:
            raise ValueError("Connection closed")
        return fn(*args, **kwargs)

    def __await__(self) -> Any:
        return self._connect().__await__()  # no worker thread to start


async def connect_inline(database: str, **kwargs: Any) -> InlineConnection:
    """Open ``database`` (a path) as an aiosqlite-compatible connection that runs inline."""
    connection = InlineConnection(partial(sqlite3.connect, database, **kwargs))
    await connection
    return connection


class Checkpointer:
    """Copies the WAL back into the database file from a worker thread, off the commit path.

    The service's connection has automatic checkpoints turned off; ``after_commit`` starts a
    PASSIVE checkpoint (it never blocks readers or the writer) every ``every_commits`` commits.
    """

    def __init__(self, database: Path, every_commits: int = 500) -> None:
        self._database = database
        self._every = every_commits
        self._commits = 0
        self._running: asyncio.Future[None] | None = None

    def after_commit(self) -> None:
        """Count a commit; start a checkpoint in a thread when enough have accumulated."""
        self._commits += 1
        if self._commits < self._every or (self._running and not self._running.done()):
            return
        self._commits = 0
        self._running = asyncio.ensure_future(asyncio.to_thread(self._checkpoint))
        self._running.add_done_callback(_log_failure)

    async def wait(self) -> None:
        """Wait for a running checkpoint to finish (before the database is closed)."""
        if self._running is not None:
            await asyncio.gather(self._running, return_exceptions=True)

    def _checkpoint(self) -> None:
        connection = sqlite3.connect(self._database, timeout=30)
        try:
            connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
        finally:
            connection.close()


def _log_failure(done: asyncio.Future[None]) -> None:
    if not done.cancelled() and done.exception() is not None:
        log.warning("WAL checkpoint failed; the next one retries", exc_info=done.exception())
