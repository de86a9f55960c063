"""Commands a person sends to a running canary: promote, abort, pause, resume."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from enum import StrEnum


class Command(StrEnum):
    """What a person can tell a canary (the API and ``deployer canary <command>``)."""

    PROMOTE = "promote"  # skip the remaining steps: promote now
    ABORT = "abort"  # back to the stable pods now
    PAUSE = "pause"  # hold at the current step until resumed, promoted or aborted
    RESUME = "resume"  # continue a paused canary (a paused analysis starts again)


@dataclass(frozen=True)
class Order:
    """One command and who gave it."""

    command: Command
    by: str


class CanaryControl:
    """The inbox of one running canary."""

    def __init__(self) -> None:
        self._orders: asyncio.Queue[Order] = asyncio.Queue()
        self._arrived = asyncio.Event()

    def send(self, command: Command, by: str) -> None:
        """Queue a command; the canary acts on it at once (it waits on :meth:`next`)."""
        self._orders.put_nowait(Order(command, by))
        self._arrived.set()

    def poll(self) -> Order | None:
        """The oldest command not yet taken, if any."""
        try:
            order = self._orders.get_nowait()
        except asyncio.QueueEmpty:
            return None
        if self._orders.empty():
            self._arrived.clear()
        return order

    async def next(self, timeout: float | None) -> Order | None:
        """Wait up to ``timeout`` seconds (None: forever) for a command."""
        order = self.poll()
        if order is not None:
            return order
        try:
            await asyncio.wait_for(self._arrived.wait(), timeout)
        except TimeoutError:
            return None
        return self.poll()
