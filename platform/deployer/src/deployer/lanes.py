"""Lanes: one Helm operation per service at a time, lanes in parallel under a global limit.

A lane holds at most one waiting deployment: a newer one supersedes it (latest wins).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from deployer.records import DeploymentRecord

log = logging.getLogger(__name__)

Run = Callable[[DeploymentRecord], Awaitable[None]]
Supersede = Callable[[DeploymentRecord, DeploymentRecord], Awaitable[None]]


@dataclass
class _Lane:
    queued: DeploymentRecord | None = None
    running: DeploymentRecord | None = None
    task: asyncio.Task[None] | None = None


class Lanes:
    """Runs deployments per service, in order, superseding queued ones with newer ones."""

    def __init__(self, run: Run, supersede: Supersede, max_concurrent: int) -> None:
        self._run = run
        self._supersede = supersede
        self._slots = asyncio.Semaphore(max_concurrent)
        self._lanes: dict[str, _Lane] = {}

    async def submit(self, record: DeploymentRecord) -> None:
        """Queue ``record`` in its service's lane; a deployment waiting there is superseded."""
        lane = self._lanes.setdefault(record.service, _Lane())
        replaced, lane.queued = lane.queued, record
        if replaced is not None:
            await self._supersede(replaced, record)
        if lane.task is None or lane.task.done():
            lane.task = asyncio.create_task(self._drain(record.service), name=record.service)

    async def _drain(self, service: str) -> None:
        lane = self._lanes[service]
        while lane.queued is not None:
            async with self._slots:
                # Take the newest only once a slot is free, so waiting lets newer events win.
                record, lane.queued = lane.queued, None
                lane.running = record
                try:
                    await self._run(record)
                except Exception:
                    log.exception("deployment crashed", extra={"deployment_id": record.id})
                finally:
                    lane.running = None

    def queue_depth(self) -> int:
        """Deployments waiting in a lane."""
        return sum(1 for lane in self._lanes.values() if lane.queued is not None)

    def busy(self) -> int:
        """Lanes running a deployment now."""
        return sum(1 for lane in self._lanes.values() if lane.running is not None)

    def queued(self, service: str) -> DeploymentRecord | None:
        """The deployment waiting in ``service``'s lane, if any."""
        lane = self._lanes.get(service)
        return lane.queued if lane else None

    def running(self, service: str) -> DeploymentRecord | None:
        """The deployment running in ``service``'s lane, if any."""
        lane = self._lanes.get(service)
        return lane.running if lane else None

    async def wait_idle(self) -> None:
        """Wait until every lane has finished its work (tests, shutdown)."""
        while tasks := [
            lane.task for lane in self._lanes.values() if lane.task and not lane.task.done()
        ]:
            await asyncio.gather(*tasks, return_exceptions=True)

    async def stop(self, timeout: float) -> None:
        """Let running deployments finish for up to ``timeout`` seconds, then cancel them (their
        helm is stopped; the records stay unfinished and resume at the next start)."""
        tasks = [lane.task for lane in self._lanes.values() if lane.task and not lane.task.done()]
        if not tasks:
            return
        _, pending = await asyncio.wait(tasks, timeout=timeout)
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
