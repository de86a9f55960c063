"""Injected errors for drills (``SERVICE_FAULT_ERROR_RATIO``): an image that answers 500 to a
share of its requests, so a canary's analysis has a bad build to catch. Off unless an image or
its environment sets it; a process that injects errors says so in its start-up log."""

from __future__ import annotations

from collections.abc import Callable

from fastapi import HTTPException, Request

# Probes and scrapes answer as usual: the pod stays ready and measurable.
SPARED_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})


def injected_errors(ratio: float) -> Callable[[Request], None]:
    """An app-wide dependency that answers 500 to ``ratio`` of the API's requests, spread
    evenly (request n fails when ``floor(n * ratio)`` grows) rather than at random, so any 100
    requests hold 100 * ratio errors. As a dependency it runs once the route matched, so the
    errors are counted under the route's template like real ones."""
    count = 0

    def maybe_fail(request: Request) -> None:
        nonlocal count
        if request.url.path in SPARED_PATHS:
            return
        before = int(count * ratio)
        count += 1
        if int(count * ratio) > before:
            raise HTTPException(500, "SERVICE_FAULT_ERROR_RATIO injected this error (a drill)")

    return maybe_fail
