"""The service database: SQLAlchemy 2 async on SQLite (embedded default) or PostgreSQL."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import Connection, DateTime, Dialect, MetaData, TypeDecorator, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.ext.asyncio import (
    AsyncConnection,
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.pool import PoolProxiedConnection
from sqlalchemy.util.concurrency import greenlet_spawn

from kit.settings import DatabaseSettings
from kit.sqlite_inline import connect_inline

T = TypeVar("T")

# What runs statements in one transaction: an ORM session (Database.transaction) or a plain
# connection (Database.core_transaction).
Transaction = AsyncSession | AsyncConnection


def dialect_of(transaction: Transaction) -> str:
    """The database's dialect name (``sqlite``, ``postgresql``) behind ``transaction``."""
    if isinstance(transaction, AsyncConnection):
        return transaction.dialect.name
    return transaction.get_bind().dialect.name


class UtcDateTime(TypeDecorator[datetime]):
    """A timezone-aware UTC timestamp on every database (SQLite stores no offset)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("UtcDateTime needs an aware datetime; use datetime.now(UTC)")
        return value.astimezone(UTC) if value is not None else None

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def default_sqlite_url(service: str, data_dir: Path = Path("data")) -> str:
    """The embedded default: a SQLite file per service under ``data_dir``."""
    return f"sqlite+aiosqlite:///{data_dir / f'{service}.db'}"


def _normalise_url(url: str) -> str:
    # Accept the URLs people paste (postgres://, postgresql://) and pick the async drivers.
    for plain, driver in (
        ("postgres://", "postgresql+asyncpg://"),
        ("postgresql://", "postgresql+asyncpg://"),
        ("sqlite:///", "sqlite+aiosqlite:///"),
    ):
        if url.startswith(plain):
            return driver + url[len(plain) :]
    return url


PG_CONNECT_TIMEOUT_SECONDS = 5.0
PG_COMMAND_TIMEOUT_SECONDS = 30.0


class Database:
    """An async engine and session factory with the pragmas and pool settings that suit it."""

    def __init__(
        self, url: str, *, pool_size: int = 5, max_overflow: int = 0, echo: bool = False
    ) -> None:
        parsed = make_url(_normalise_url(url))
        self.dialect = parsed.get_backend_name()
        options: dict[str, Any] = {"echo": echo}
        if self.dialect == "sqlite":
            if parsed.query:
                raise ValueError(
                    f"SQLite URL options are not supported ({dict(parsed.query)}); "
                    "give a plain file path, e.g. sqlite:///data/order.db"
                )
            path = parsed.database or ":memory:"
            if path != ":memory:":
                Path(path).parent.mkdir(parents=True, exist_ok=True)
            options["async_creator"] = partial(connect_inline, path, timeout=5)
            # SQLite has one writer at a time. One pooled connection makes transactions queue
            # in the pool instead of spinning in SQLite's busy handler (or failing to upgrade
            # a read transaction to a write one).
            options["pool_size"] = 1
            options["max_overflow"] = 0
        else:
            options["pool_size"] = pool_size
            options["max_overflow"] = max_overflow
            if self.dialect == "postgresql":
                # asyncpg waits 60 s to connect by default, and a statement on a connection
                # whose server vanished (its pod replaced) waits for TCP's retransmissions:
                # fail fast instead, so the request answers 503 and an event is tried again.
                options["connect_args"] = {
                    "timeout": PG_CONNECT_TIMEOUT_SECONDS,
                    "command_timeout": PG_COMMAND_TIMEOUT_SECONDS,
                }
        self.engine: AsyncEngine = create_async_engine(parsed, **options)
        if self.dialect == "sqlite":
            event.listen(self.engine.sync_engine, "connect", _sqlite_pragmas)
        elif self.dialect == "postgresql":
            event.listen(self.engine.sync_engine, "checkout", _replace_closed_connection)
        self.sessions = async_sessionmaker(self.engine, expire_on_commit=False)
        self._commit_hooks: dict[str, Callable[[Any], None]] = {}

    def on_commit(self, key: str, hook: Callable[[Any], None]) -> None:
        """Run ``hook(session.info[key])`` after a ``transaction()`` commits that set that key."""
        self._commit_hooks[key] = hook

    @classmethod
    def from_settings(cls, settings: DatabaseSettings, service: str) -> Database:
        """The database named by DATABASE_URL, or the service's SQLite file."""
        url = settings.url.get_secret_value() if settings.url else default_sqlite_url(service)
        return cls(
            url,
            pool_size=settings.pool_size,
            max_overflow=settings.max_overflow,
            echo=settings.echo,
        )

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncSession]:
        """A session inside one transaction: committed on success, rolled back on error."""
        async with self.sessions() as session:
            async with session.begin():
                yield session
            self._run_hooks(self._take_hooks(session.info))

    @asynccontextmanager
    async def core_transaction(self) -> AsyncIterator[AsyncConnection]:
        """A connection inside one transaction, committed on success, rolled back on error.

        SQLAlchemy Core without the ORM session: for hot paths that run Core statements only,
        where the session's unit of work, identity map and transaction bookkeeping are pure
        cost. Commit hooks run as for ``transaction()``, from the connection's ``info``.
        """
        async with self.engine.connect() as connection:
            # The connection's info outlives this checkout (it belongs to the pooled
            # connection): take this transaction's keys out whatever happens.
            try:
                async with connection.begin():
                    yield connection
            finally:
                committed = self._take_hooks(connection.info)
        self._run_hooks(committed)

    async def run_in_transaction(self, work: Callable[[Connection], T]) -> T:
        """Run ``work(connection)`` in one transaction and return what it returns.

        ``work`` is synchronous: it runs Core statements on a plain ``Connection``, committed
        when it returns and rolled back when it raises. The checkout, begin, statements, commit
        and return to the pool all run in one greenlet, where ``core_transaction()`` starts one
        per step (each with a fresh stack): on SQLite that halves the CPU of a two-statement
        transaction (about 300 us to 160 us here). Commit hooks run as for ``transaction()``,
        from the connection's ``info``.
        """
        outcome: tuple[T, list[tuple[str, Any]]] = await greenlet_spawn(
            self._transaction_in_greenlet, work
        )
        result, committed = outcome
        self._run_hooks(committed)
        return result

    def _transaction_in_greenlet(
        self, work: Callable[[Connection], T]
    ) -> tuple[T, list[tuple[str, Any]]]:
        with self.engine.sync_engine.connect() as connection:
            # The connection's info outlives this checkout (it belongs to the pooled
            # connection): take this transaction's keys out whatever happens.
            try:
                with connection.begin():
                    result = work(connection)
            finally:
                committed = self._take_hooks(connection.info)
        return result, committed

    def _take_hooks(self, info: dict[Any, Any]) -> list[tuple[str, Any]]:
        """Take this transaction's commit-hook values out of ``info`` (a pooled connection's
        outlives the transaction), whether it committed or not."""
        return [
            (key, value) for key in self._commit_hooks if (value := info.pop(key, None)) is not None
        ]

    def _run_hooks(self, committed: list[tuple[str, Any]]) -> None:
        for key, value in committed:
            self._commit_hooks[key](value)

    async def create_tables(self, metadata: MetaData) -> None:
        """Create the tables of ``metadata`` that do not exist yet."""
        async with self.engine.begin() as conn:
            await conn.run_sync(metadata.create_all)

    async def ping(self) -> None:
        """Run a trivial query; raises when the database is unreachable."""
        async with self.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))

    async def warm_up(self) -> None:
        """Open the whole pool now, so a pod's first requests do not pay for new connections
        (PostgreSQL's SCRAM handshake, asyncpg's type introspection) while it takes traffic."""
        size = self.engine.pool.size() if hasattr(self.engine.pool, "size") else 1
        async with AsyncExitStack() as stack:
            for _ in range(size):
                conn = await stack.enter_async_context(self.engine.connect())
                await conn.execute(text("SELECT 1"))

    async def close(self) -> None:
        """Close every pooled connection."""
        await self.engine.dispose()


def _sqlite_pragmas(dbapi_connection: Any, _: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    # In WAL mode NORMAL skips the fsync per commit; a killed process loses nothing, only a power
    # cut can take the last commits back (PostgreSQL is the production database).
    cursor.execute("PRAGMA synchronous=NORMAL")
    # Statements run on the event loop's thread (kit.sqlite_inline): another process holding the
    # write lock longer than this fails the transaction rather than freezing the service.
    cursor.execute("PRAGMA busy_timeout=5000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def _replace_closed_connection(_: Any, __: Any, proxy: PoolProxiedConnection) -> None:
    # A server restart must not fail the next request. pool_pre_ping would check with a
    # BEGIN / ; / ROLLBACK exchange on every checkout (three round trips, measured as 40% of
    # the saga's statements); asyncpg already knows when the server closed the socket.
    driver = proxy.driver_connection
    if driver is not None and driver.is_closed():
        raise DisconnectionError("the server closed this pooled connection")  # pool retries
