"""The gateway's errors as problem details, mapped once."""

from __future__ import annotations

from fastapi.responses import JSONResponse

from gateway_service.domain.errors import (
    BodyTooLargeError,
    GatewayError,
    KeySetUnavailableError,
    RateLimitedError,
    TokenRejectedError,
    UnsafePathError,
    UpstreamBadResponseError,
    UpstreamTimeoutError,
    UpstreamUnavailableError,
)
from kit.problems import problem_response

STATUS_OF: dict[type[GatewayError], int] = {
    TokenRejectedError: 401,
    KeySetUnavailableError: 503,
    RateLimitedError: 429,
    BodyTooLargeError: 413,
    UnsafePathError: 400,
    UpstreamUnavailableError: 503,
    UpstreamTimeoutError: 504,
    UpstreamBadResponseError: 502,
}
REALM = 'Bearer realm="flotilla"'


def problem_for(error: GatewayError) -> JSONResponse:
    """The problem+json response for ``error``, with its challenge or Retry-After header."""
    headers: dict[str, str] | None = None
    if isinstance(error, TokenRejectedError):
        challenge = REALM
        if not error.missing:
            challenge += f', error="invalid_token", error_description="{_quotable(error.reason)}"'
        headers = {"WWW-Authenticate": challenge}
    elif isinstance(error, RateLimitedError):
        headers = {"Retry-After": str(error.retry_after)}
    return problem_response(STATUS_OF[type(error)], str(error), headers=headers)


def _quotable(text: str) -> str:
    # An RFC 9110 quoted-string of printable ASCII: parts of the reason come from the caller.
    return "".join(c for c in text if " " <= c <= "~" and c not in '"\\')
