"""The one retry helper: a step is tried again on transient errors, with a growing pause, until
:func:`deployer.reconcile.decide.retry_or_final` says final. The rolling and the canary paths
both use it."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import TypeVar

from deployer.reconcile.decide import retry_or_final
from deployer.reconcile.errors import StepError

log = logging.getLogger(__name__)
T = TypeVar("T")


class GaveUpError(Exception):
    """A step failed for good: its error was final, or transient ``attempts`` times."""

    def __init__(self, error: StepError, attempts: int) -> None:
        super().__init__(str(error))
        self.error = error
        self.attempts = attempts


async def retried(
    step: Callable[[], Awaitable[T]],
    *,
    delay_seconds: float,
    what: str,
    context: Mapping[str, object],
) -> T:
    """``step``'s result; on a transient StepError wait ``delay_seconds`` x the attempt and try
    again. Raises GaveUpError once retry_or_final says final."""
    attempt = 0
    while True:
        attempt += 1
        try:
            return await step()
        except StepError as exc:
            if retry_or_final(exc, attempt) == "final":
                raise GaveUpError(exc, attempt) from exc
            log.warning(
                f"{what} failed transiently; retrying",
                extra={**context, "attempt": attempt, "error": str(exc)},
            )
            await asyncio.sleep(delay_seconds * attempt)
