"""Leadership: several deployer replicas, one of which drives the releases.

The leader holds the ``leader`` lease and one lease per lane (a target: an environment and a
service). It alone consumes pipeline events, runs lanes, promotions and drift checks; the others
stand by, answer the API by forwarding it to the leader, and take over once its leases expire.
A lane's lease is the fencing token of every helm operation on its release: right before one,
the leader proves it still holds the lane (a compare-and-set renewal), so a replica that lost
its lease (killed, paused, cut off from NATS) cannot write after another one took over.

Why one leader rather than lanes spread over the replicas: approvals, canaries and the newest
queued deployment of a lane live in the leader's memory, so one process decides them with no
cross-replica protocol; lanes still run in parallel inside it. The per-lane leases make the
take-over lane by lane and keep the fence as narrow as one release.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Iterable

from deployer.ha.keepalive import KeepAlive
from deployer.ha.leases import Holder, LeaseBook, LeaseLostError
from deployer.queue.lanes import LaneLostError
from deployer.report.metrics import HELD_LANES, LEADER
from deployer.targets import Target

log = logging.getLogger(__name__)
LEADER_LEASE = "leader"


def lane_lease(target: Target) -> str:
    """The lease name of ``target``'s lane (key-value keys allow letters, digits, - _ = . /)."""
    return f"lane.{target.environment}.{target.service}"


class Leadership:
    """Wins and keeps the leader lease, claims the lanes, fences each write."""

    def __init__(
        self,
        book: LeaseBook,
        me: Holder,
        *,
        on_lane_lost: Callable[[Target], Awaitable[None]],
        on_leadership_lost: Callable[[], Awaitable[None]],
    ) -> None:
        self.me = me
        self._book = book
        self._sweep_seconds = max(book.ttl / 10, 0.2)
        self._keepalive = KeepAlive(book, self._lost)
        self._on_lane_lost = on_lane_lost
        self._on_leadership_lost = on_leadership_lost
        self._lanes: dict[str, Target] = {}
        self._claimer: asyncio.Task[None] | None = None
        self.leading = False

    async def try_lead(self) -> bool:
        """One attempt at the leader lease; True when this replica leads now."""
        if self.leading:
            return True
        self._keepalive.start()
        lease = await self._book.acquire(LEADER_LEASE, self.me)
        if lease is None:
            return False
        self._keepalive.add(lease)
        self.leading = True
        LEADER.set(1)
        log.info("this replica leads", extra={"replica": self.me.replica})
        return True

    async def lead(self, stop: asyncio.Event) -> bool:
        """Wait until this replica holds the leader lease (True), or ``stop`` is set (False)."""
        if await self.try_lead():
            return True
        holder = await self._book.holder(LEADER_LEASE)
        log.info(
            "standing by: another replica leads",
            extra={"replica": self.me.replica, "leader": holder.replica if holder else ""},
        )
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self._sweep_seconds)
            if await self.try_lead():
                return True
        return False

    def claim_lanes(
        self,
        targets: Callable[[], Iterable[Target]],
        on_claimed: Callable[[list[Target]], Awaitable[None]],
    ) -> None:
        """Claim every target's lane in the background, again and again until each is held
        (a lane whose previous holder has just died frees itself when its lease expires);
        ``on_claimed`` gets the lanes each sweep claimed (it resumes their deployments)."""
        self._claimer = asyncio.create_task(self._claim(targets, on_claimed), name="claim lanes")

    async def _claim(
        self,
        targets: Callable[[], Iterable[Target]],
        on_claimed: Callable[[list[Target]], Awaitable[None]],
    ) -> None:
        while self.leading:
            claimed = [t for t in targets() if lane_lease(t) not in self._lanes]
            claimed = [t for t in claimed if await self._claim_one(t)]
            if claimed:
                HELD_LANES.set(len(self._lanes))
                try:
                    await on_claimed(claimed)
                except Exception:
                    log.exception("resuming claimed lanes failed; they resume at the next start")
            await asyncio.sleep(self._sweep_seconds)

    async def _claim_one(self, target: Target) -> bool:
        name = lane_lease(target)
        try:
            lease = await self._book.acquire(name, self.me)
        except Exception as exc:  # NATS away for a moment: the next sweep tries again
            log.warning("cannot claim a lane yet", extra={"lane": str(target), "error": repr(exc)})
            return False
        if lease is None:
            return False
        self._keepalive.add(lease)
        self._lanes[name] = target
        log.info("claimed a lane", extra={"lane": str(target), "replica": self.me.replica})
        return True

    def holds(self, target: Target) -> bool:
        """Whether this replica holds ``target``'s lane (as far as it knows now)."""
        return lane_lease(target) in self._lanes

    async def fence(self, target: Target) -> None:
        """Prove, right before a write to ``target``'s release, that this replica still holds its
        lane; LaneLostError when it does not."""
        name = lane_lease(target)
        if name not in self._lanes:
            raise LaneLostError(f"this replica does not hold the lane {target}")
        try:
            await self._keepalive.fence(name)
        except LeaseLostError as exc:
            self._lanes.pop(name, None)
            HELD_LANES.set(len(self._lanes))
            raise LaneLostError(f"the lane {target} moved to another replica: {exc}") from None

    async def leader(self) -> Holder | None:
        """The replica that leads now, if any (read from the lease)."""
        if self.leading:
            return self.me
        return await self._book.holder(LEADER_LEASE)

    async def _lost(self, name: str) -> None:
        if name == LEADER_LEASE:
            log.error("this replica lost the leadership", extra={"replica": self.me.replica})
            self.leading = False
            LEADER.set(0)
            await self._on_leadership_lost()
            return
        target = self._lanes.pop(name, None)
        HELD_LANES.set(len(self._lanes))
        if target is not None:
            log.error("this replica lost a lane", extra={"lane": str(target)})
            await self._on_lane_lost(target)

    async def step_down(self) -> None:
        """Stop claiming and renewing, and hand every lease back, so that another replica takes
        over at once instead of after the leases expire (a graceful shutdown)."""
        self.leading = False
        LEADER.set(0)
        if self._claimer is not None:
            self._claimer.cancel()
            await asyncio.gather(self._claimer, return_exceptions=True)
        await self._keepalive.stop(release=True)
        self._lanes.clear()
        HELD_LANES.set(0)
