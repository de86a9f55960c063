"""Keeping held leases alive: each renewed every ttl/3 in a task of its own, and dropped (with
a call to ``on_lost``) once it cannot be kept.

A lease is lost when its renewal finds the key moved (another replica holds it, or it expired),
or when it has not been renewed for ttl * 2/3 (NATS does not answer): from ttl on, another
replica may acquire it, and the last third leaves the work it guards time to stop.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import time
from collections.abc import Awaitable, Callable

import nats.errors

from deployer.ha.leases import Lease, LeaseBook, LeaseLostError, LeaseUnconfirmedError

log = logging.getLogger(__name__)

LostCallback = Callable[[str], Awaitable[None] | None]
# Below this, a retry after a failed renewal waits for the deadline itself.
_SHORTEST_RETRY_SECONDS = 0.05


class KeepAlive:
    """Renews a set of held leases until they are removed, lost or ``stop`` is called."""

    def __init__(
        self, book: LeaseBook, on_lost: LostCallback, *, every_seconds: float | None = None
    ) -> None:
        self._book = book
        self._on_lost = on_lost
        self._every = every_seconds if every_seconds is not None else book.ttl / 3
        self._grace = book.ttl * 2 / 3
        self._leases: dict[str, Lease] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._started = False

    def start(self) -> None:
        """Start renewing (the leases added so far, and those added from now on)."""
        self._started = True
        for name in self._leases:
            self._spawn(name)

    async def stop(self, *, release: bool = False) -> None:
        """Stop renewing; with ``release``, give every held lease up too (so another replica
        may take them at once rather than after their ttl)."""
        self._started = False
        tasks = list(self._tasks.values())
        self._tasks.clear()
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        held = list(self._leases.values())
        self._leases.clear()
        if release:
            for lease in held:
                try:
                    await self._book.release(lease)
                except nats.errors.Error as exc:  # it expires on its own after its ttl
                    log.warning(
                        "lease not released", extra={"lease": lease.name, "error": repr(exc)}
                    )

    def add(self, lease: Lease) -> None:
        """Keep ``lease`` alive (replacing a lease of the same name held before)."""
        self._leases[lease.name] = lease
        if self._started and lease.name not in self._tasks:
            self._spawn(lease.name)

    def remove(self, name: str) -> Lease | None:
        """Stop keeping ``name`` alive; the lease as last renewed (to release it), if held."""
        task = self._tasks.pop(name, None)
        if task is not None and task is not asyncio.current_task():
            task.cancel()
        return self._leases.pop(name, None)

    def current(self, name: str) -> Lease | None:
        """The lease ``name`` as last renewed (its latest revision), while held."""
        return self._leases.get(name)

    def held(self) -> list[str]:
        """The names of the leases held now."""
        return sorted(self._leases)

    async def fence(self, name: str) -> Lease:
        """Prove ``name`` held now, right before a write it guards: the lease renewed. Raises
        LeaseLostError when it is not held (reported to ``on_lost`` too), LeaseUnconfirmedError when
        NATS did not answer in time."""
        return await self._renew(name)

    def _spawn(self, name: str) -> None:
        self._tasks[name] = asyncio.create_task(self._keep(name), name=f"lease {name}")

    async def _keep(self, name: str) -> None:
        retry: float | None = None
        while (lease := self._leases.get(name)) is not None:
            # Every ttl/3 from the last confirmation (a fence's too), sooner after a failure.
            due = lease.confirmed_at + self._every - time.monotonic()
            await asyncio.sleep(max(retry if retry is not None else due, 0.0))
            try:
                await self._renew(name)
            except LeaseUnconfirmedError as exc:
                log.warning("lease not renewed", extra={"lease": name, "error": str(exc)})
                left = lease.confirmed_at + self._grace - time.monotonic()
                # Retry halfway to the deadline; the last try is at the deadline itself.
                retry = min(self._every, left / 2)
                if retry < _SHORTEST_RETRY_SECONDS:
                    retry = left
                continue
            except LeaseLostError:
                return
            retry = None

    async def _renew(self, name: str) -> Lease:
        lock = self._locks.setdefault(name, asyncio.Lock())
        async with lock:
            lease = self._leases.get(name)
            if lease is None:
                raise LeaseLostError(
                    name, f"lease {name!r} is not held by this replica: acquire it first"
                )
            left = lease.confirmed_at + self._grace - time.monotonic()
            try:
                if left <= 0:
                    raise TimeoutError
                renewed = await asyncio.wait_for(self._book.renew(lease), left)
            except LeaseLostError as lost:
                failure: LeaseLostError = lost
            except Exception as exc:  # NATS unreachable, mostly: the same answer for any
                if time.monotonic() < lease.confirmed_at + self._grace:
                    raise LeaseUnconfirmedError(
                        name,
                        f"lease {name!r} could not be confirmed (NATS did not answer: "
                        f"{exc!r}); do not write what it guards now, try again",
                        lease.holder,
                    ) from exc
                failure = LeaseLostError(
                    name,
                    f"lease {name!r} was not renewed for {self._grace:.1f}s (NATS did not "
                    f"answer: {exc!r}); another replica may take it once its ttl "
                    f"({self._book.ttl:.1f}s) runs out: stop the work it guards and acquire it "
                    "again once NATS answers",
                    lease.holder,
                )
            else:
                if self._leases.get(name) is lease:
                    self._leases[name] = renewed
                return renewed
        await self._lose(name, lease)
        raise failure

    async def _lose(self, name: str, lease: Lease) -> None:
        if self._leases.get(name) is not lease:
            return  # removed or replaced meanwhile: not this lease's loss to report
        self.remove(name)
        try:
            reported = self._on_lost(name)
            if inspect.isawaitable(reported):
                await reported
        except Exception as exc:  # the keeper must outlive a failing callback
            log.exception("on_lost failed", extra={"lease": name, "error": repr(exc)})
