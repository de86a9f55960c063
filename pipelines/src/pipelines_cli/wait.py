"""Waiting for the outcome of one deployment, read from the DEPLOY stream."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Callable

from nats import errors as nats_errors
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from nats.js.errors import NotFoundError

from deploy_contract.events import DEPLOY_SUBJECT_PREFIX, DRIFTED_TYPE, DeployEventData, DeployPhase
from deploy_contract.promotions import PROMOTION_TYPE
from kit.events import CloudEvent, InvalidEventError, PermanentEventError
from kit.events.streams import DEPLOY
from kit.settings import NatsSettings
from pipelines_cli.exitcodes import ExitCode
from pipelines_cli.publish import connect

log = logging.getLogger(__name__)

FETCH_BATCH = 256
FETCH_SECONDS = 2.0
RETRY_SECONDS = 1.0
# The server deletes the ephemeral consumer this long after the last fetch (e.g. a killed job).
CONSUMER_INACTIVE_SECONDS = 60.0


EXIT_CODES = {
    DeployPhase.SUCCEEDED: ExitCode.SUCCEEDED,
    DeployPhase.UNCHANGED: ExitCode.SUCCEEDED,
    DeployPhase.FAILED: ExitCode.FAILED,
    DeployPhase.ROLLED_BACK: ExitCode.FAILED,
    DeployPhase.REJECTED: ExitCode.REJECTED,
    DeployPhase.SUPERSEDED: ExitCode.SUPERSEDED,
}


def exit_code(outcome: DeployEventData | None) -> ExitCode:
    """The exit code for a terminal deploy event, or TIMEOUT when there was none."""
    if outcome is None:
        return ExitCode.TIMEOUT
    return EXIT_CODES[outcome.phase]


def deploy_filter(service: str) -> str:
    """The subjects of every deploy event of ``service``."""
    return f"{DEPLOY_SUBJECT_PREFIX}{service}.>"


def parse_deploy_event(msg: Msg) -> DeployEventData | None:
    """The data of a deploy event, or None for a drift report or a promotion (events of the
    service, not of a deployment) and (logged) for a message that is not a deploy event."""
    try:
        event = CloudEvent.from_bytes(msg.data)
        if event.type in (DRIFTED_TYPE, PROMOTION_TYPE):
            return None
        return event.data_as(DeployEventData)
    except (InvalidEventError, PermanentEventError) as exc:
        log.warning("ignoring a malformed deploy event on %s: %s", msg.subject, exc)
        return None


class _Reader:
    """An ephemeral pull consumer over the service's whole history in the DEPLOY stream, so an
    outcome published before ``wait`` started is read too. The ci user may create and delete
    consumers on DEPLOY and pull from them, nothing more (platform/nats/local.conf)."""

    def __init__(self, js: JetStreamContext, service: str) -> None:
        self.js = js
        self.service = service
        self.name = f"pipelines-wait-{uuid.uuid4().hex[:12]}"
        self.sub: JetStreamContext.PullSubscription | None = None

    async def open(self) -> JetStreamContext.PullSubscription:
        """Create the consumer (NotFoundError while the stream does not exist) and bind to it."""
        config = ConsumerConfig(
            name=self.name,
            filter_subject=deploy_filter(self.service),
            deliver_policy=DeliverPolicy.ALL,
            ack_policy=AckPolicy.EXPLICIT,
            ack_wait=30.0,
            inactive_threshold=CONSUMER_INACTIVE_SECONDS,
        )
        await self.js.add_consumer(DEPLOY.name, config=config)
        self.sub = await self.js.pull_subscribe_bind(consumer=self.name, stream=DEPLOY.name)
        return self.sub

    async def close(self) -> None:
        """Unsubscribe and delete the consumer; the server would drop it when inactive anyway."""
        if self.sub is not None:
            with contextlib.suppress(Exception):
                await self.sub.unsubscribe()
            self.sub = None
        with contextlib.suppress(Exception):
            await self.js.delete_consumer(DEPLOY.name, self.name)


async def wait_for_outcome(
    settings: NatsSettings,
    service: str,
    deployment_id: str,
    timeout: float,
    on_event: Callable[[DeployEventData], None],
    on_notice: Callable[[str], None],
) -> DeployEventData | None:
    """Follow deployment ``deployment_id`` of ``service`` until a terminal phase, or None after
    ``timeout`` seconds.

    Every event of the deployment goes to ``on_event`` in stream order; ``on_notice`` gets
    one-line notes on waiting conditions (stream missing, consumer recreated).
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    bus = await connect(settings)
    reader = _Reader(bus.js, service)
    seen: set[int] = set()
    stream_missing_noted = False
    try:
        while (remaining := deadline - loop.time()) > 0:
            sub = reader.sub
            if sub is None:
                try:
                    sub = await reader.open()
                except NotFoundError:
                    if not stream_missing_noted:
                        on_notice(
                            f"stream {DEPLOY.name} does not exist yet (is the deployer running?); "
                            "waiting for it"
                        )
                        stream_missing_noted = True
                    await asyncio.sleep(min(RETRY_SECONDS, remaining))
                    continue
            try:
                msgs = await sub.fetch(FETCH_BATCH, timeout=min(FETCH_SECONDS, remaining))
            except TimeoutError:
                continue
            except nats_errors.Error as exc:
                # The consumer went away (server restart, inactivity): make a new one; the stream
                # sequences already seen are skipped.
                on_notice(f"re-reading {DEPLOY.name} after {exc!r}")
                await reader.close()
                reader = _Reader(bus.js, service)
                await asyncio.sleep(min(RETRY_SECONDS, remaining))
                continue
            for msg in msgs:
                await msg.ack()
                sequence = msg.metadata.sequence.stream
                if sequence in seen:
                    continue
                seen.add(sequence)
                data = parse_deploy_event(msg)
                if data is None or data.deployment_id != deployment_id:
                    continue
                on_event(data)
                if data.phase.terminal:
                    return data
        return None
    finally:
        await reader.close()
        await bus.drain()
