"""What a run is allowed to do: the target, the rate and the bounds, checked before any traffic."""

from __future__ import annotations

import ipaddress
import math
from dataclasses import dataclass
from urllib.parse import urlsplit

# `make run` puts the gateway on 127.0.0.1:8000 (platform/devkit/src/devkit/devrun.py, --base-port).
DEFAULT_TARGET = "http://127.0.0.1:8000"
MAX_RATE = 2000.0
MAX_DURATION = 3600.0
MAX_REQUESTS = 1_000_000
MAX_TIMEOUT = 60.0
MAX_USERS = 100
MAX_IN_FLIGHT = 10_000
# The gateway allows each user 50 requests/s (GATEWAY_RATE_LIMIT_PER_SECOND): spreading the load
# over users at half that keeps the run clear of 429s.
REQUESTS_PER_SECOND_PER_USER = 25.0


class PlanError(ValueError):
    """A plan that must not run; the message says what was wrong and what to do."""


def default_users(rate: float) -> int:
    """How many users share ``rate`` so that none gets near the gateway's per-user limit."""
    return max(1, min(MAX_USERS, math.ceil(rate / REQUESTS_PER_SECOND_PER_USER)))


def loopback_target(target: str) -> str:
    """``target`` without a trailing slash, or PlanError unless it is http(s) on a loopback host.

    Loopback means 127.0.0.0/8, ::1 or localhost: the generator must never load someone else's
    server by accident.
    """
    parts = urlsplit(target)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise PlanError(
            f"target {target!r} is not an http:// or https:// URL: "
            f"pass e.g. --target {DEFAULT_TARGET}"
        )
    if parts.query or parts.fragment:
        raise PlanError(f"target {target!r} has a query or fragment: pass the gateway's base URL")
    if not is_loopback_host(parts.hostname):
        raise PlanError(
            f"target host {parts.hostname!r} is not a loopback address (127.0.0.0/8, ::1, "
            "localhost): loadgen only loads servers on this machine. Port-forward the gateway "
            f"to 127.0.0.1 and pass e.g. --target {DEFAULT_TARGET}"
        )
    try:
        parts.port  # noqa: B018 - urlsplit checks the port only when it is read
    except ValueError:
        raise PlanError(f"target {target!r} has an invalid port") from None
    return target.rstrip("/")


def is_loopback_host(host: str) -> bool:
    """Whether ``host`` (a name or an address, IPv6 without brackets) is this machine's loopback."""
    if host.lower() == "localhost":
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped.is_loopback
    return address.is_loopback


def _check_range(name: str, value: float, low: float, high: float, *, low_open: bool) -> None:
    too_low = value <= low if low_open else value < low
    if math.isnan(value) or too_low or value > high:
        bound = f"more than {low:g}" if low_open else f"at least {low:g}"
        raise PlanError(f"{name} must be {bound} and at most {high:g}, not {value:g}")


@dataclass(frozen=True)
class LoadPlan:
    """One run: ``rate`` requests/s at ``target`` for ``duration`` s or ``max_requests``.

    ``post_ratio`` is the share of requests that place an order (0.2: one POST for every four
    GETs); ``timeout`` bounds each request; ``users`` share the load (0: enough users to stay
    below the gateway's per-user rate limit); ``max_in_flight`` caps requests waiting for an
    answer, a request due beyond it is recorded as dropped; ``setup_timeout`` bounds creating the
    users while auth answers 503. A ``max_requests`` of 0 means ``rate * duration``.
    Raises PlanError for values that must not run.
    """

    target: str = DEFAULT_TARGET
    rate: float = 50.0
    duration: float = 30.0
    max_requests: int = 0
    post_ratio: float = 0.2
    timeout: float = 5.0
    users: int = 0
    max_in_flight: int = 200
    setup_timeout: float = 60.0

    def __post_init__(self) -> None:
        # Frozen: the normalised values are written once, here.
        object.__setattr__(self, "target", loopback_target(self.target))
        _check_range("rate (requests/s)", self.rate, 0, MAX_RATE, low_open=True)
        _check_range("duration (s)", self.duration, 0, MAX_DURATION, low_open=True)
        _check_range("post ratio", self.post_ratio, 0, 1, low_open=False)
        _check_range("timeout (s)", self.timeout, 0, MAX_TIMEOUT, low_open=True)
        _check_range("setup timeout (s)", self.setup_timeout, 0, MAX_DURATION, low_open=True)
        _check_range("max in flight", self.max_in_flight, 1, MAX_IN_FLIGHT, low_open=False)
        _check_range("users", self.users, 0, MAX_USERS, low_open=False)
        _check_range("max requests", self.max_requests, 0, MAX_REQUESTS, low_open=False)
        if self.max_requests == 0:
            planned = math.ceil(self.rate * self.duration)
            if planned > MAX_REQUESTS:
                raise PlanError(
                    f"rate * duration is {planned} requests, more than {MAX_REQUESTS} kept in "
                    "memory: lower the rate or the duration"
                )
            object.__setattr__(self, "max_requests", planned)
        if self.users == 0:
            object.__setattr__(self, "users", default_users(self.rate))

    def is_post(self, index: int) -> bool:
        """Whether request ``index`` places an order: POSTs spread evenly, the first one first."""
        if self.post_ratio == 0:
            return False
        # A tiny epsilon so that e.g. 5 * 0.2 counts as 1.0 despite binary floats.
        return math.floor(index * self.post_ratio + 1e-9) > math.floor(
            (index - 1) * self.post_ratio + 1e-9
        )
