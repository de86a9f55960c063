"""Which handler failures are a dependency's outage rather than the event's fault.

A handler that fails because its database or NATS is away for a moment (a PostgreSQL pod
restarting, a NATS member lost) must not have its event dead-lettered after a few attempts: the
event is fine, and the outage can outlast the whole backoff. Such failures are retried until
the dependency is back; only other failures count towards ``max_deliver``.

The classes are matched by module and name, so the event bus imports no database driver.
"""

from __future__ import annotations

# (module prefix, class name) of errors that mean "the dependency did not answer": SQLAlchemy's
# wrappers of a lost or refused connection (and its pool's timeout), asyncpg's own, NATS's.
OUTAGE_CLASSES = frozenset(
    {
        ("sqlalchemy", "OperationalError"),
        ("sqlalchemy", "InterfaceError"),
        ("sqlalchemy", "TimeoutError"),
        ("asyncpg", "PostgresConnectionError"),
        ("asyncpg", "CannotConnectNowError"),
        ("asyncpg", "ConnectionDoesNotExistError"),
        ("asyncpg", "InterfaceError"),
        ("nats", "NoServersError"),
        ("nats", "ConnectionClosedError"),
        ("nats", "TimeoutError"),
        ("nats", "NoRespondersError"),
        ("socket", "gaierror"),  # the dependency's name does not resolve (its pod is replaced)
    }
)


def _is_outage_class(error: BaseException) -> bool:
    if isinstance(error, ConnectionError | TimeoutError):
        return True
    for cls in type(error).__mro__:
        module = cls.__module__.split(".", 1)[0]
        if (module, cls.__name__) in OUTAGE_CLASSES:
            return True
    return False


def is_outage(error: BaseException) -> bool:
    """Whether ``error`` (or an error it was raised from) says a dependency is unreachable."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        if _is_outage_class(current):
            return True
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return False
