"""The deploy events of the demo's deployments, as CI's NATS user sees them."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from typing import Any

import nats
from demo_common import DEPLOY_TIMEOUT, DemoError

from deploy_contract.events import DeployEventData
from devkit.localstack.environment import local_password
from kit.events import CloudEvent, InvalidEventError, PermanentEventError


class DeployEvents:
    """Every ``deploy.>`` event, read as CI's NATS user (a core subscription made before
    anything is deployed, so nothing is missed)."""

    def __init__(self) -> None:
        self.events: list[DeployEventData] = []
        self._changed = asyncio.Condition()
        self._nc: Any = None

    async def connect(self, url: str) -> None:
        """Connect as the ``ci`` user and subscribe to ``deploy.>``."""
        self._nc = await nats.connect(
            servers=[url], user="ci", password=local_password("ci"), name="flotilla-demo"
        )
        await self._nc.subscribe("deploy.>", cb=self._on_message)

    async def close(self) -> None:
        """Drain the connection."""
        if self._nc is not None:
            with contextlib.suppress(Exception):
                await self._nc.drain()
            self._nc = None

    async def _on_message(self, msg: Any) -> None:
        try:
            data = CloudEvent.from_bytes(msg.data).data_as(DeployEventData)
        except (InvalidEventError, PermanentEventError):
            return  # not a deploy event this demo can show
        async with self._changed:
            self.events.append(data)
            self._changed.notify_all()

    async def _after(self, index: int, limit: float) -> list[DeployEventData]:
        """The events after the first ``index`` ones, as soon as there are any (none at the
        monotonic time ``limit``)."""
        async with self._changed:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(
                    self._changed.wait_for(lambda: len(self.events) > index),
                    max(0.0, limit - time.monotonic()),
                )
            return self.events[index:]

    async def track(
        self,
        deployment_id: str,
        on_event: Callable[[DeployEventData], None],
        timeout: float = DEPLOY_TIMEOUT,
    ) -> list[DeployEventData]:
        """Call ``on_event`` for each event of the deployment until its one terminal event;
        returns them."""
        seen: list[DeployEventData] = []
        index = 0
        deadline = time.monotonic() + timeout
        while True:
            new = await self._after(index, deadline)
            if not new:
                phases = " -> ".join(e.phase.value for e in seen) or "none"
                raise DemoError(
                    f"deployment {deployment_id} had no outcome within {timeout:.0f} s "
                    f"(events so far: {phases}); see logs/deployer.log"
                )
            index += len(new)
            for event in new:
                if event.deployment_id != deployment_id:
                    continue
                seen.append(event)
                on_event(event)
                if event.phase.terminal:
                    return seen
