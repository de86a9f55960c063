"""Lanes: one operation per release at a time, lanes in parallel under a global limit.

A lane belongs to a target (an environment and a service). It holds at most one waiting
deployment: a newer one supersedes it (latest wins). Other work on the release (a drift
correction) queues in the same lane, behind the deployments, so each release has one writer.
A lane whose lease moved to another replica (LaneLostError) stops and forgets its work: the new
holder resumes it from the records.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from deployer.records import DeploymentRecord
from deployer.targets import Target

log = logging.getLogger(__name__)
T = TypeVar("T")

Run = Callable[[DeploymentRecord], Awaitable[None]]


class LaneLostError(BaseException):
    """This replica no longer holds the lane it was about to write to: it stops working on it
    (without concluding the deployment, which the lane's new holder resumes).

    A BaseException, like a cancellation, so that no "a step failed" handler turns it into a
    failed deployment.
    """


Supersede = Callable[[DeploymentRecord, DeploymentRecord], Awaitable[None]]


@dataclass
class _Job:
    work: Callable[[], Awaitable[Any]]
    done: asyncio.Future[Any]


@dataclass
class _Lane:
    queued: DeploymentRecord | None = None
    running: DeploymentRecord | None = None
    jobs: list[_Job] = field(default_factory=list)
    task: asyncio.Task[None] | None = None


class Lanes:
    """Runs deployments per target, in order, superseding queued ones with newer ones."""

    def __init__(self, run: Run, supersede: Supersede, max_concurrent: int) -> None:
        self._run = run
        self._supersede = supersede
        self._slots = asyncio.Semaphore(max_concurrent)
        self._lanes: dict[Target, _Lane] = {}

    async def submit(self, record: DeploymentRecord) -> None:
        """Queue ``record`` in its target's lane; a deployment waiting there is superseded."""
        lane = self._lanes.setdefault(record.target, _Lane())
        if record.id in {r.id for r in (lane.queued, lane.running) if r is not None}:
            return  # resumed from the records while it was already here
        replaced, lane.queued = lane.queued, record
        if replaced is not None:
            await self._supersede(replaced, record)
        self._start(record.target, lane)

    async def after_deployments(self, target: Target, work: Callable[[], Awaitable[T]]) -> T:
        """Run ``work`` in ``target``'s lane once the deployments there are done; its result."""
        lane = self._lanes.setdefault(target, _Lane())
        job = _Job(work, asyncio.get_running_loop().create_future())
        lane.jobs.append(job)
        self._start(target, lane)
        result: T = await job.done
        return result

    def _start(self, target: Target, lane: _Lane) -> None:
        if lane.task is None or lane.task.done():
            lane.task = asyncio.create_task(self._drain(lane), name=str(target))

    async def _drain(self, lane: _Lane) -> None:
        try:
            while lane.queued is not None or lane.jobs:
                async with self._slots:
                    # Take the newest only once a slot is free, so waiting lets newer events win.
                    if lane.queued is not None:
                        record, lane.queued = lane.queued, None
                        await self._deploy(lane, record)
                    else:
                        await self._job(lane.jobs.pop(0))
        except LaneLostError as lost:
            log.warning("stopped a lane another replica holds now", extra={"reason": str(lost)})
            self._forget(lane)

    @staticmethod
    def _forget(lane: _Lane) -> None:
        lane.queued = None
        for job in lane.jobs:
            job.done.cancel()
        lane.jobs.clear()

    async def cancel(self, target: Target) -> None:
        """Stop ``target``'s lane now (its lease is gone): the running deployment is cancelled
        (its helm stopped) and left unfinished for the lane's next holder, the rest forgotten."""
        lane = self._lanes.get(target)
        if lane is None:
            return
        self._forget(lane)
        if lane.task is not None and not lane.task.done():
            lane.task.cancel()
            await asyncio.gather(lane.task, return_exceptions=True)

    async def _deploy(self, lane: _Lane, record: DeploymentRecord) -> None:
        lane.running = record
        try:
            await self._run(record)
        except Exception:
            log.exception("deployment crashed", extra={"deployment_id": record.id})
        finally:
            lane.running = None

    @staticmethod
    async def _job(job: _Job) -> None:
        try:
            result = await job.work()
        except (asyncio.CancelledError, LaneLostError):
            job.done.cancel()
            raise
        except Exception as exc:
            job.done.set_exception(exc)
            return
        job.done.set_result(result)

    def queue_depth(self) -> int:
        """Deployments waiting in a lane."""
        return sum(1 for lane in self._lanes.values() if lane.queued is not None)

    def busy(self) -> int:
        """Lanes running a deployment now."""
        return sum(1 for lane in self._lanes.values() if lane.running is not None)

    def queued(self, target: Target) -> DeploymentRecord | None:
        """The deployment waiting in ``target``'s lane, if any."""
        lane = self._lanes.get(target)
        return lane.queued if lane else None

    def running(self, target: Target) -> DeploymentRecord | None:
        """The deployment running in ``target``'s lane, if any."""
        lane = self._lanes.get(target)
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
        for lane in self._lanes.values():
            for job in lane.jobs:
                job.done.cancel()
            lane.jobs.clear()
