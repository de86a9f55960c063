"""The class of a request's outcome, from its HTTP status or from the exception it raised."""

from __future__ import annotations

import asyncio
import errno
import re
from enum import StrEnum

import aiohttp

ERROR_TEXT_LIMIT = 200
_RESET_ERRNOS = frozenset({errno.ECONNRESET, errno.EPIPE, errno.ECONNABORTED})
_ERRNO_IN_TEXT = re.compile(r"\[Errno (\d+)\]")


class Outcome(StrEnum):
    """What happened to one request."""

    OK = "ok"
    CLIENT_ERROR = "client_error"
    SERVER_ERROR = "server_error"
    REFUSED = "refused"
    RESET = "reset"
    TIMEOUT = "timeout"
    OTHER = "other"
    DROPPED = "dropped"

    @property
    def failed(self) -> bool:
        """Whether the outcome counts as a failure (every class but ok and client_error)."""
        return self not in (Outcome.OK, Outcome.CLIENT_ERROR)


def classify_status(status: int) -> Outcome:
    """The outcome of an answer with HTTP ``status`` (redirects are not followed: other)."""
    if 200 <= status < 300:
        return Outcome.OK
    if 400 <= status < 500:
        return Outcome.CLIENT_ERROR
    if 500 <= status < 600:
        return Outcome.SERVER_ERROR
    return Outcome.OTHER


def classify_error(error: BaseException) -> tuple[Outcome, str]:
    """The outcome of a request that raised ``error``, and a short text naming it."""
    text = f"{type(error).__name__}: {error}"[:ERROR_TEXT_LIMIT]
    # First: aiohttp's timeout errors are also connection errors (ServerTimeoutError).
    if isinstance(error, asyncio.TimeoutError):
        return Outcome.TIMEOUT, text
    if isinstance(error, aiohttp.ClientConnectorError):
        if _refused(error.os_error):
            return Outcome.REFUSED, text
        if error.os_error.errno in _RESET_ERRNOS:
            return Outcome.RESET, text
        return Outcome.OTHER, text
    if isinstance(error, ConnectionRefusedError):
        return Outcome.REFUSED, text
    if isinstance(
        error,
        aiohttp.ServerDisconnectedError
        # The body ended early: the connection closed while the answer was under way.
        | aiohttp.ClientPayloadError
        | ConnectionResetError
        | BrokenPipeError
        | ConnectionAbortedError,
    ):
        return Outcome.RESET, text
    if isinstance(error, OSError) and error.errno in _RESET_ERRNOS:
        return Outcome.RESET, text
    return Outcome.OTHER, text


def _refused(os_error: OSError) -> bool:
    if os_error.errno == errno.ECONNREFUSED:
        return True
    # A name with several addresses (localhost: ::1 and 127.0.0.1) that all refused gives one
    # OSError("Multiple exceptions: [Errno 111] ..., [Errno 111] ...") without an errno.
    codes = _ERRNO_IN_TEXT.findall(str(os_error))
    return (
        os_error.errno is None and bool(codes) and all(int(c) == errno.ECONNREFUSED for c in codes)
    )
