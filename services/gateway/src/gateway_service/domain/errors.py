"""Why the gateway did not forward a request, or the upstream did not answer it."""

from __future__ import annotations


class GatewayError(Exception):
    """Base of the gateway's errors; the message is meant for the caller."""


class TokenRejectedError(GatewayError):
    """The request carries no usable bearer token.

    ``reason`` is the short RFC 6750 ``error_description``; ``missing`` means no token was sent
    at all, which RFC 6750 answers with a bare challenge.
    """

    def __init__(self, reason: str, advice: str, *, missing: bool = False) -> None:
        super().__init__(f"{reason}: {advice}")
        self.reason = reason
        self.missing = missing


class KeySetUnavailableError(GatewayError):
    """The auth service's JWKS could not be fetched, so no token can be verified yet."""


class RateLimitedError(GatewayError):
    """The client used up its requests; ``retry_after`` is whole seconds until the next one."""

    def __init__(self, retry_after: int, rate: float, burst: int) -> None:
        super().__init__(
            f"too many requests: this client may send {rate:g} per second (bursts of {burst}); "
            f"retry after {retry_after} s"
        )
        self.retry_after = retry_after


class BodyTooLargeError(GatewayError):
    """The request body is larger than the gateway forwards."""


class UnsafePathError(GatewayError):
    """The path has '.' or '..' segments, which could reach another upstream route."""


class UpstreamError(GatewayError):
    """The upstream service could not be reached or did not answer properly."""

    def __init__(self, service: str, detail: str) -> None:
        super().__init__(f"the {service} service {detail}")


class UpstreamUnavailableError(UpstreamError):
    """Nothing accepted the connection (refused, unresolvable)."""


class UpstreamTimeoutError(UpstreamError):
    """The connection or the answer took longer than the configured timeout."""


class UpstreamBadResponseError(UpstreamError):
    """The answer was not valid HTTP, or the connection dropped before it was complete."""
